"""KeyLocks: runs that share a stream key run one after the other, in-graph; runs on other keys run in parallel.

A run claims its keys before it reads them:

    repeat:
        take a run lock: the latest claim's on these keys, else one no run seems to hold
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

    The bookkeeping lives in one int64 variable (fewer ops per run than one variable each):

        [0, buckets)              the last claim recorded on each bucket: ticket * pool_size + lock, or -1
        [assigned, +pool_size)    the last ticket given each run lock
        [finished, +pool_size)    each run lock's runs are finished up to this ticket
        turn, ticket              counters: where the search for an idle run lock starts; tickets given

    Args:
      name: a unique scope name; the mutexes' shared names derive from it.
      pool_size: run mutexes; when all are held by runs in flight, a claim waits for one.
      buckets: slots that keys hash into to record their last claim (8 bytes each).
    """

    def __init__(self, name, pool_size, buckets):
        self.pool_size, self.buckets = pool_size, buckets
        self._assigned, self._finished = buckets, buckets + pool_size
        self._turn, self._ticket = buckets + 2 * pool_size, buckets + 2 * pool_size + 1
        with tf.compat.v1.name_scope("locks"):
            self._registration = tf.raw_ops.MutexV2(shared_name=f"{name}/registration", name="registration")
            self._pool = tf.stack(
                [
                    tf.raw_ops.MutexV2(shared_name=f"{name}/run_{index}", name=f"run_{index}")
                    for index in range(pool_size)
                ],
                name="pool",
            )
            initial = tf.concat(
                [tf.fill([buckets + 2 * pool_size], tf.constant(-1, tf.int64)), tf.zeros([2], tf.int64)], 0
            )
            self._book = tf.compat.v1.Variable(
                initial,
                trainable=False,
                use_resource=True,
                name="bookkeeping",
                collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES],
            )
        self.variables = [self._book]

    def _read(self, indices):
        return tf.raw_ops.ResourceGather(resource=self._book.handle, indices=indices, dtype=tf.int64)

    def _add(self, index):
        return tf.raw_ops.ResourceScatterAdd(
            resource=self._book.handle, indices=[index], updates=tf.ones([1], tf.int64)
        )

    def _mark_finished(self, lock_index, ticket):
        return tf.raw_ops.ResourceScatterMax(
            resource=self._book.handle, indices=(self._finished + lock_index)[None], updates=ticket[None]
        )

    def _in_flight(self, holders, own_lock):
        """True for each recorded claim (ticket * pool_size + lock) among `holders` not known to be finished.

        A claim on `own_lock` is finished: the run asking holds that lock now.
        """
        locks, tickets = tf.math.floormod(holders, self.pool_size), tf.math.floordiv(holders, self.pool_size)
        pending = tf.logical_and(holders >= 0, self._read(self._finished + locks) < tickets)
        return tf.logical_and(pending, tf.not_equal(locks, own_lock))

    def _wait_for(self, claims):
        """An op that takes and drops the run lock of each claim in turn, then marks the claim finished."""

        def wait():
            def body(index):
                lock_index = tf.math.floormod(claims[index], self.pool_size)
                lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, lock_index))
                with tf.control_dependencies([tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)]):
                    marked = self._mark_finished(lock_index, tf.math.floordiv(claims[index], self.pool_size))
                with tf.control_dependencies([marked]):
                    return index + 1

            return tf.while_loop(lambda index: index < tf.size(claims), body, (tf.constant(0),))[0]

        return run_if(tf.size(claims) > 0, wait)

    def _take_lock(self, buckets):
        """`(lock, claim code)`: a run lock, and a new ticket (code: ticket * pool_size + lock index).

        The lock is that of the latest claim on the keys' buckets, if any: its run holds some of
        these keys, so waiting for it is waiting our turn (holding nothing), and when that run is
        done its claim is on our own lock, which makes it finished (a peek never marks its claim
        finished itself). Runs on other keys therefore keep to other locks. Keys never claimed
        take a lock that no run seems to hold, round robin from a turn. The ticket is taken while
        holding the lock, so the tickets of one lock grow in the order it is held.
        """
        latest = tf.reduce_max(tf.concat([[-1], self._read(buckets)], 0))  # read without the mutex: a hint
        with tf.control_dependencies([self._add(self._turn)]):
            view = self._read(tf.range(self._assigned, self._turn + 1, dtype=tf.int64))
        assigned, finished, turn = view[: self.pool_size], view[self.pool_size : -1], view[-1]
        rotated = tf.math.floormod(tf.range(self.pool_size, dtype=tf.int64) - turn, self.pool_size)
        idle = tf.argmin(tf.where(finished >= assigned, rotated, rotated + self.pool_size), output_type=tf.int64)
        lock_index = tf.where(latest >= 0, tf.math.floormod(latest, self.pool_size), idle)
        lock = tf.raw_ops.MutexLock(mutex=tf.gather(self._pool, lock_index), name="run_lock")
        with tf.control_dependencies([lock]):
            counted = self._add(self._ticket)
        with tf.control_dependencies([counted]):
            ticket = self._read([self._ticket])[0]
        noted = tf.raw_ops.ResourceScatterUpdate(
            resource=self._book.handle, indices=(self._assigned + lock_index)[None], updates=ticket[None]
        )
        with tf.control_dependencies([noted]):
            return tf.identity(lock), ticket * self.pool_size + lock_index

    def _attempt(self, buckets):
        """One try: `(claimed, lock, claim code, claims to wait for)`; the lock is held either way."""
        lock, code = self._take_lock(buckets)
        with tf.control_dependencies([code]):
            registration = tf.raw_ops.MutexLock(mutex=self._registration, name="registration_lock")
        with tf.control_dependencies([registration]):  # the critical section: read, decide, record
            previous = self._read(buckets)
            pending = self._in_flight(previous, tf.math.floormod(code, self.pool_size))
            claimed = tf.logical_not(tf.reduce_any(pending))
            recorded = tf.raw_ops.ResourceScatterUpdate(
                resource=self._book.handle, indices=buckets, updates=tf.where(claimed, code, previous)
            )  # or unchanged
        with tf.control_dependencies([recorded]):
            released = tf.raw_ops.ConsumeMutexLock(mutex_lock=registration, name="registration_done")
        with tf.control_dependencies([released]):
            return tf.identity(claimed), lock, code, tf.boolean_mask(previous, pending)

    def acquire(self, keys, checks=()):
        """Claims `keys` for this run (waiting for earlier runs on them); returns a `ClaimedRun`.

        Read the keys' rows after `ClaimedRun.claimed`. `checks` run before anything is claimed.
        """
        buckets = bucket_of(keys, self.buckets)
        with tf.control_dependencies(list(checks)):
            first = self._attempt(buckets)

        def retry(claimed, lock, code, waiting):
            let_go = tf.raw_ops.ConsumeMutexLock(mutex_lock=lock)
            with tf.control_dependencies([let_go]):
                waited = self._wait_for(waiting)
            with tf.control_dependencies([waited]):
                return self._attempt(buckets)

        claimed, lock, code, _ = tf.while_loop(
            lambda claimed, *_: tf.logical_not(claimed),
            retry,
            first,
            shape_invariants=(tf.TensorShape([]),) * 3 + (tf.TensorShape([None]),),
        )
        with tf.control_dependencies([claimed]):
            return ClaimedRun(self, lock, code, tf.no_op(name="claimed"))

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

    def __init__(self, locks, lock, code, claimed):
        self._locks, self._lock, self._code, self.claimed = locks, lock, code, claimed

    def release_after(self, ops, name=None):
        """An op run after `ops` that lets go of the run lock (held until every such op has run)."""
        with tf.control_dependencies(list(ops)):
            return tf.raw_ops.ConsumeMutexLock(mutex_lock=self._lock, name=name)

    def finish_after(self, ops, name=None):
        """Like `release_after`, also marking the run finished, so that later runs on its keys need not wait."""
        locks = self._locks
        with tf.control_dependencies(list(ops)):
            finished = locks._mark_finished(
                tf.math.floormod(self._code, locks.pool_size), tf.math.floordiv(self._code, locks.pool_size)
            )
        return self.release_after([finished], name)
