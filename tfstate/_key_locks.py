"""KeyLocks: runs that share a stream key run one after the other, in-graph; runs on other keys run in parallel.

A run claims its keys, in-graph, before it reads them:

    lock the registration mutex                      # held for microseconds, not for the run
        ticket += 1; run_lock = lock pool[ticket % pool_size]   # this run's own mutex from a pool
        for each key: previous[key] = holder[bucket(key)]; holder[bucket(key)] = run_lock
        wait until every previous run lock (other than this run's) is free   # earlier runs on these keys are done
    unlock the registration mutex
    ... read, compute, write the keys' rows ...
    run_lock is released when the run's last consumer of it has run (after its writes, or its reads)

Why it is correct and cannot deadlock: the registration mutex orders the claims, so a run waits
only for runs that claimed a shared key before it; a run holding a run lock never waits for
anything (it is past registration), so every wait ends. A run lock is reused only by a run
`pool_size` tickets later, which takes it only once the earlier run is done; waiting on a reused
lock waits for an unrelated run at worst, never for a later one. Two keys that share a bucket (one
in `buckets`) also wait for each other: a false conflict, never a missed one. Every lock is a
TensorFlow `MutexLock`, released when its tensor dies, so a run that fails releases its locks.
"""

import tensorflow as tf


def run_if(condition, build):
    """A tensor that is done once `build()`'s op has run, if `condition` holds (a `tf.cond`; nothing otherwise)."""
    def taken():
        with tf.control_dependencies([build()]):
            return tf.constant(True)

    return tf.cond(condition, taken, lambda: tf.constant(False))


def bucket_of(keys, buckets):
    """The bucket of each key (int64 or string), from its 64-bit fingerprint."""
    fingerprints = tf.bitcast(tf.fingerprint(keys), tf.int64)
    return tf.math.floormod(fingerprints, buckets)


class KeyLocks:
    """Registration mutex, pool of run mutexes and key buckets of one keyed table (see the module docstring).

    Args:
      name: a unique scope name; the mutexes' shared names derive from it.
      pool_size: run mutexes; more runs than this in flight at once wait for one to finish.
      buckets: holder slots keys hash into (a few hundred KiB of int64 for 65536).
    """

    def __init__(self, name, pool_size, buckets):
        self.pool_size, self.buckets = pool_size, buckets
        with tf.compat.v1.name_scope("locks"):
            self._registration = tf.raw_ops.MutexV2(shared_name=f"{name}/registration", name="registration")
            self._pool = tf.stack([tf.raw_ops.MutexV2(shared_name=f"{name}/run_{index}", name=f"run_{index}")
                                   for index in range(pool_size)], name="pool")
            def variable(value, name):
                return tf.compat.v1.Variable(value, dtype=tf.int64, trainable=False, use_resource=True, name=name,
                                             collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])

            self._tickets = variable(0, "tickets")  # runs registered so far
            self._holders = variable(tf.fill([buckets], tf.constant(-1, tf.int64)), "holders")  # last ticket per bucket
            self._finished = variable(tf.fill([pool_size], tf.constant(-1, tf.int64)), "finished")  # per run lock
        self.variables = [self._tickets, self._holders, self._finished]

    def _unfinished(self, tickets, own_ticket=None):
        """The run-lock indices of those `tickets` whose runs may still be in flight (not marked finished)."""
        locks = tf.math.floormod(tickets, self.pool_size)
        pending = tf.logical_and(tickets >= 0, self._finished.sparse_read(locks) < tickets)
        if own_ticket is not None:  # an earlier run on this run's own lock is done: this run holds that lock
            pending = tf.logical_and(pending, tf.not_equal(locks, tf.math.floormod(own_ticket, self.pool_size)))
        return tf.boolean_mask(locks, pending)

    def _wait_for(self, locks):
        """An op that takes and drops each of the run locks `locks` in turn (if there are any)."""
        def wait():
            unique = tf.unique(locks)[0]

            def body(index):
                lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, unique[index]))
                with tf.control_dependencies([tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)]):
                    return index + 1

            return tf.while_loop(lambda index: index < tf.size(unique), body, (tf.constant(0),))[0]

        return run_if(tf.size(locks) > 0, wait)

    def acquire(self, keys, checks=()):
        """Claims `keys` for this run; returns a `ClaimedRun`.

        Once `ClaimedRun.claimed` is done no earlier run on these keys is in flight: read the
        keys' rows after it. `checks` run before anything is claimed.
        """
        buckets = bucket_of(keys, self.buckets)
        with tf.control_dependencies(list(checks)):
            registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        with tf.control_dependencies([registration]):
            ticket = self._tickets.assign_add(1)
            run_lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, tf.math.floormod(ticket, self.pool_size)),
                                            name="run_lock")
        with tf.control_dependencies([run_lock]):
            previous = self._holders.sparse_read(buckets)
        with tf.control_dependencies([previous]):
            marked = self._holders.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(buckets), ticket), buckets))
        waited = self._wait_for(self._unfinished(previous, ticket))
        with tf.control_dependencies([marked, waited]):
            released = tf.raw_ops.ConsumeMutexLock(mutex_lock=registration, name="registration_done")
        with tf.control_dependencies([released]):
            return ClaimedRun(self, run_lock, ticket, tf.no_op(name="claimed"))

    def exclusively(self, build, checks=()):
        """An op that runs `build(wait_for)`'s ops under the registration mutex, after `checks`.

        `wait_for(keys)` returns an op done once no run is in flight on `keys`; `wait_for(None)`
        waits for every run in flight. While the mutex is held no run can claim keys, so what
        `build` removes or replaces is not read or written by any run until it is done.
        """
        with tf.control_dependencies(list(checks)):
            registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        with tf.control_dependencies([registration]):
            built = build(self._wait_for_keys)
        with tf.control_dependencies([built]):
            return tf.group(tf.raw_ops.ConsumeMutexLock(mutex_lock=registration), name="registration_done")

    def _wait_for_keys(self, keys):
        if keys is None:
            return self._wait_for(tf.range(self.pool_size, dtype=tf.int64))
        return self._wait_for(self._unfinished(self._holders.sparse_read(bucket_of(keys, self.buckets))))


class ClaimedRun:
    """A run's claim on its keys: `claimed` (an op), and the ops that end it."""

    def __init__(self, locks, run_lock, ticket, claimed):
        self._locks, self._run_lock, self._ticket, self.claimed = locks, run_lock, ticket, claimed

    def release_after(self, ops, name=None):
        """An op run after `ops` that lets go of the run lock (held until every such op has run)."""
        with tf.control_dependencies(list(ops)):
            return tf.raw_ops.ConsumeMutexLock(mutex_lock=self._run_lock, name=name)

    def finish_after(self, ops, name=None):
        """Like `release_after`, also marking the run finished, so that later runs on its keys need not wait."""
        locks = self._locks
        with tf.control_dependencies(list(ops)):
            index = tf.math.floormod(self._ticket, locks.pool_size)
            finished = locks._finished.scatter_update(tf.IndexedSlices(self._ticket[None], index[None]))
        return self.release_after([finished], name)
