"""KeyLocks: runs that share a stream key run one after the other, in-graph; runs on other keys run in parallel.

A run claims its keys before it reads them:

    repeat:
        lock the registration mutex                          # held for microseconds, never while waiting
        earlier = the runs recorded on the keys' buckets that are not known to be finished
        if none:
            ticket += 1; take a free run lock from the pool (its tickets and finish marks say which)
            record (ticket, run lock) on the keys' buckets
        unlock the registration mutex
        if some: take and drop each of their run locks (wait for them), mark them finished
    until claimed
    ... read, compute, write the keys' rows ...
    mark finished and release the run lock after the writes (keep), or release it after the reads (peek)

Why it is correct: a run claims only when no earlier run on its keys is in flight, and records
itself before it unlocks the registration mutex, so a later run on those keys waits for it. A
mark "lock i finished up to ticket t" is written by the run itself after its writes, or by a run
that took lock i after run t held it; tickets grow in claim order, so the mark never covers a
run still in flight. Why it cannot deadlock: a waiting run holds no lock, a claimed run never
waits, and the registration mutex is never held while waiting (except to take a run lock when
every lock of the pool seems busy; its holder is a claimed run, which does not wait). Two keys
that share a bucket also wait for each other: a false conflict, never a missed one. Every lock
is a TensorFlow `MutexLock`, released when its tensor dies, so a run that fails releases its locks.
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


def _no_lock():
    """A variant tensor standing for "no lock taken" where a `MutexLock` would be (never consumed)."""
    return tf.raw_ops.EmptyTensorList(element_shape=tf.constant([], tf.int32), max_num_elements=0,
                                      element_dtype=tf.int32)


class KeyLocks:
    """Registration mutex, pool of run mutexes and key buckets of one keyed table (see the module docstring).

    Args:
      name: a unique scope name; the mutexes' shared names derive from it.
      pool_size: run mutexes; when all are held by runs in flight, a claim waits for one.
      buckets: slots that keys hash into to record their last claim (8 bytes each).
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

            none = tf.constant(-1, tf.int64)
            self._tickets = variable(0, "tickets")  # claims so far
            self._holders = variable(tf.fill([buckets], none), "holders")  # ticket * pool_size + lock, per bucket
            self._assigned = variable(tf.fill([pool_size], none), "assigned")  # last ticket given each lock
            self._finished = variable(tf.fill([pool_size], none), "finished")  # each lock's runs finished up to
        self.variables = [self._tickets, self._holders, self._assigned, self._finished]

    def _in_flight(self, holders):
        """The recorded claims (ticket * pool_size + lock) among `holders` not known to be finished."""
        locks, tickets = tf.math.floormod(holders, self.pool_size), tf.math.floordiv(holders, self.pool_size)
        pending = tf.logical_and(holders >= 0, self._finished.sparse_read(locks) < tickets)
        return tf.boolean_mask(holders, pending)

    def _wait_for(self, claims):
        """An op that takes and drops the run lock of each claim in turn, then marks the claim finished."""
        def wait():
            def body(index):
                lock_index = tf.math.floormod(claims[index], self.pool_size)
                lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, lock_index))
                with tf.control_dependencies([tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)]):
                    ticket = tf.math.floordiv(claims[index], self.pool_size)
                    marked = self._finished.scatter_max(tf.IndexedSlices(ticket[None], lock_index[None]))
                with tf.control_dependencies([marked]):
                    return index + 1

            return tf.while_loop(lambda index: index < tf.size(claims), body, (tf.constant(0),))[0]

        return run_if(tf.size(claims) > 0, wait)

    def _take_lock(self, buckets):
        """Under the registration mutex: a new ticket, a free run lock taken, the claim recorded on `buckets`."""
        ticket = self._tickets.assign_add(1)
        assigned = self._assigned.read_value()
        idle = self._finished.read_value() >= assigned
        lock_index = tf.argmin(tf.where(idle, assigned, assigned + 2 ** 62), output_type=tf.int64)  # oldest idle
        noted = self._assigned.scatter_update(tf.IndexedSlices(ticket[None], lock_index[None]))
        with tf.control_dependencies([noted]):
            lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, lock_index), name="run_lock")
        with tf.control_dependencies([lock]):
            claim = tf.fill(tf.shape(buckets), ticket * self.pool_size + lock_index)
            recorded = self._holders.scatter_update(tf.IndexedSlices(claim, buckets))
        with tf.control_dependencies([recorded]):
            return tf.identity(lock), tf.identity(ticket), tf.identity(lock_index)

    def _attempt(self, buckets):
        """One try: `(claimed, lock, ticket, lock index, claims to wait for)`, under the registration mutex."""
        registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        with tf.control_dependencies([registration]):
            waiting = self._in_flight(self._holders.sparse_read(buckets))
            claimed = tf.equal(tf.size(waiting), 0)
            none = tf.constant(-1, tf.int64)
            lock, ticket, lock_index = tf.cond(claimed, lambda: self._take_lock(buckets),
                                               lambda: (_no_lock(), none, none))
        with tf.control_dependencies([lock, ticket, lock_index]):
            released = tf.raw_ops.ConsumeMutexLock(mutex_lock=registration, name="registration_done")
        with tf.control_dependencies([released]):
            return tf.identity(claimed), tf.identity(lock), ticket, lock_index, tf.identity(waiting)

    def acquire(self, keys, checks=()):
        """Claims `keys` for this run (waiting for earlier runs on them); returns a `ClaimedRun`.

        Read the keys' rows after `ClaimedRun.claimed`. `checks` run before anything is claimed.
        """
        buckets = bucket_of(keys, self.buckets)
        with tf.control_dependencies(list(checks)):
            first = self._attempt(buckets)

        def retry(claimed, lock, ticket, lock_index, waiting):
            with tf.control_dependencies([self._wait_for(waiting)]):
                return self._attempt(buckets)

        def until_claimed():
            loop = tf.while_loop(lambda claimed, *_: tf.logical_not(claimed), retry, first,
                                 shape_invariants=(tf.TensorShape([]),) * 4 + (tf.TensorShape([None]),))
            return loop[1:4]

        lock, ticket, lock_index = tf.cond(first[0], lambda: tuple(tf.identity(t) for t in first[1:4]), until_claimed)
        with tf.control_dependencies([lock]):
            return ClaimedRun(self, lock, ticket, lock_index, tf.no_op(name="claimed"))

    def exclusively(self, build):
        """An op that runs `build()`'s ops under the registration mutex, once no run is in flight.

        While the mutex is held no run can claim keys: what `build` reads is whole, what it
        replaces is read by no run until it is done.
        """
        registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        waited = []
        for index in range(self.pool_size):  # every claimed run is done once each run lock was free
            with tf.control_dependencies([registration] + waited[-1:]):
                lock = tf.raw_ops.MutexLock(mutex=self._pool[index])
            waited.append(tf.raw_ops.ConsumeMutexLock(mutex_lock=lock))
        with tf.control_dependencies(waited):
            built = build()
        with tf.control_dependencies([built]):
            return tf.group(tf.raw_ops.ConsumeMutexLock(mutex_lock=registration), name="registration_done")


class ClaimedRun:
    """A run's claim on its keys: `claimed` (an op), and the ops that end it."""

    def __init__(self, locks, lock, ticket, lock_index, claimed):
        self._locks, self._lock, self._ticket, self._lock_index, self.claimed = locks, lock, ticket, lock_index, claimed

    def release_after(self, ops, name=None):
        """An op run after `ops` that lets go of the run lock (held until every such op has run)."""
        with tf.control_dependencies(list(ops)):
            return tf.raw_ops.ConsumeMutexLock(mutex_lock=self._lock, name=name)

    def finish_after(self, ops, name=None):
        """Like `release_after`, also marking the run finished, so that later runs on its keys need not wait."""
        with tf.control_dependencies(list(ops)):
            finished = self._locks._finished.scatter_max(
                tf.IndexedSlices(self._ticket[None], self._lock_index[None]))
        return self.release_after([finished], name)
