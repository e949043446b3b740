"""The compute lock is granted first come, first served, and a release hands it over."""

import threading
import time

import pytest

from engine.protocol import COMPUTE_LOCK
from engine.turnstile import FairLock

WAIT_S = 10.0


def wait_for_waiters(lock: FairLock, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while lock.num_waiting < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lock.num_waiting} waiters, expected {count}")
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order():
    lock, order = FairLock(), []

    def take(name: int) -> None:
        with lock:
            order.append(name)

    lock.acquire()
    threads = []
    for name in range(6):
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        wait_for_waiters(lock, name + 1)  # each queued before the next one starts
    lock.release()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == list(range(6))
    assert not lock.locked()


def test_a_holder_asking_again_goes_behind_the_waiter():
    """An engine that releases at the end of a step and asks again at once gets its next step
    only after the other model's step: a plain `threading.Lock` lets it take the lock back."""
    lock, order = FairLock(), []

    def other_model() -> None:
        with lock:
            order.append("other")

    lock.acquire()
    thread = threading.Thread(target=other_model)
    thread.start()
    wait_for_waiters(lock, 1)
    lock.release()
    with lock:
        order.append("again")
    thread.join(WAIT_S)
    assert order == ["other", "again"]


def test_release_without_acquire_is_refused():
    with pytest.raises(RuntimeError):
        FairLock().release()


def test_the_compute_lock_is_fair():
    assert isinstance(COMPUTE_LOCK, FairLock)
