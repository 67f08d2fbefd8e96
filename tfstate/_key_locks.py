"""KeyLocks: runs that share a stream key run one after the other, in-graph; runs on other keys run in parallel.

A run claims its keys before it reads them:

    repeat:
        take a run lock from the pool (one that no run seems to hold)   # waits only if its holder runs on
        ticket += 1                                                  # taken while holding the run lock
        lock the registration mutex                                  # held for microseconds
            earlier = the claims recorded on the keys' buckets that are not known to be finished
            if none: record (ticket, run lock) on the keys' buckets
        unlock the registration mutex
        if some: let go of the run lock; take and drop each of their run locks (wait), mark them finished
    until claimed
    ... read, compute, write the keys' rows ...
    mark finished and release the run lock after the writes (keep), or release it after the reads (peek)

Why it is correct: a run claims only when no earlier run on its keys is in flight, and records
itself before it unlocks the registration mutex, so a later run on those keys waits for it. The
mark "lock i finished up to ticket t" is written by run t itself after its writes, or by a run
that took lock i after run t had recorded a claim on it; a run takes its ticket while holding its
lock, so tickets on one lock grow in the order the lock is held, and the mark never covers a run
still in flight. Why it cannot deadlock: a run waits for the registration mutex or for a run
lock only while holding at most its own run lock, the registration mutex is never held while
waiting, and a run that waits for earlier claims holds nothing. Two keys that share a bucket also
wait for each other: a false conflict, never a missed one. Every lock is a TensorFlow
`MutexLock`, released when its tensor dies, so a run that fails releases its locks.
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
            self._turns = variable(0, "turns")  # where the search for an idle run lock starts
            self._tickets = variable(0, "tickets")  # run locks taken so far
            self._holders = variable(tf.fill([buckets], none), "holders")  # ticket * pool_size + lock, per bucket
            self._assigned = variable(tf.fill([pool_size], none), "assigned")  # last ticket given each lock
            self._finished = variable(tf.fill([pool_size], none), "finished")  # each lock's runs finished up to
        self.variables = [self._turns, self._tickets, self._holders, self._assigned, self._finished]

    def _in_flight(self, holders, own_lock):
        """True for each recorded claim (ticket * pool_size + lock) among `holders` not known to be finished.

        A claim on `own_lock` is finished: the run asking holds that lock now.
        """
        locks, tickets = tf.math.floormod(holders, self.pool_size), tf.math.floordiv(holders, self.pool_size)
        pending = tf.logical_and(holders >= 0, self._finished.sparse_read(locks) < tickets)
        return tf.logical_and(pending, tf.not_equal(locks, own_lock))

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

    def _take_lock(self):
        """`(lock, ticket, lock index)`: a run lock that no run seems to hold (round robin from a turn), and a ticket."""
        turn = self._turns.assign_add(1)
        assigned = self._assigned.read_value()
        idle = self._finished.read_value() >= assigned
        rotated = tf.math.floormod(tf.range(self.pool_size, dtype=tf.int64) - turn, self.pool_size)
        lock_index = tf.argmin(tf.where(idle, rotated, rotated + self.pool_size), output_type=tf.int64)
        lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, lock_index), name="run_lock")
        with tf.control_dependencies([lock]):
            ticket = self._tickets.assign_add(1)
        noted = self._assigned.scatter_update(tf.IndexedSlices(ticket[None], lock_index[None]))
        with tf.control_dependencies([noted]):
            return tf.identity(lock), tf.identity(ticket), lock_index

    def _attempt(self, buckets):
        """One try: `(claimed, lock, ticket, lock index, claims to wait for)`; the lock is held either way."""
        lock, ticket, lock_index = self._take_lock()
        with tf.control_dependencies([ticket]):
            registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        with tf.control_dependencies([registration]):  # the critical section: read, decide, record
            previous = self._holders.sparse_read(buckets)
            pending = self._in_flight(previous, lock_index)
            claimed = tf.logical_not(tf.reduce_any(pending))
            claim = tf.where(claimed, ticket * self.pool_size + lock_index, previous)  # unchanged unless claimed
            recorded = self._holders.scatter_update(tf.IndexedSlices(claim, buckets))
        with tf.control_dependencies([recorded]):
            released = tf.raw_ops.ConsumeMutexLock(mutex_lock=registration, name="registration_done")
        with tf.control_dependencies([released]):
            waiting = tf.boolean_mask(previous, pending)
            return tf.identity(claimed), lock, ticket, lock_index, waiting

    def acquire(self, keys, checks=()):
        """Claims `keys` for this run (waiting for earlier runs on them); returns a `ClaimedRun`.

        Read the keys' rows after `ClaimedRun.claimed`. `checks` run before anything is claimed.
        """
        buckets = bucket_of(keys, self.buckets)
        with tf.control_dependencies(list(checks)):
            first = self._attempt(buckets)

        def retry(claimed, lock, ticket, lock_index, waiting):
            let_go = tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)
            with tf.control_dependencies([let_go]):
                waited = self._wait_for(waiting)
            with tf.control_dependencies([waited]):
                return self._attempt(buckets)

        claimed, lock, ticket, lock_index, _ = tf.while_loop(
            lambda claimed, *_: tf.logical_not(claimed), retry, first,
            shape_invariants=(tf.TensorShape([]),) * 4 + (tf.TensorShape([None]),))
        with tf.control_dependencies([claimed]):
            return ClaimedRun(self, lock, ticket, lock_index, tf.no_op(name="claimed"))

    def exclusively(self, build):
        """An op that runs `build()`'s ops while no run is in flight or can start (holding every run lock)."""
        locks = []
        for index in range(self.pool_size):  # in index order, as every such op takes them
            mutex = self._pool[index]
            # the order is a control input of the lock op itself: one on the slice above would be
            # dropped when Grappler folds the slice into the stacked handle
            with tf.control_dependencies(locks[-1:]):
                locks.append(tf.raw_ops.MutexLock(mutex=mutex))
        with tf.control_dependencies(locks):
            built = build()
        with tf.control_dependencies([built]):
            return tf.group([tf.raw_ops.ConsumeMutexLock(mutex_lock=lock) for lock in locks], name="exclusively")


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
