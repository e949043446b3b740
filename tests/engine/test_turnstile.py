"""The compute turnstile grants cores first come, first served, and a release hands them over."""

import os
import threading
import time

import pytest

from engine.protocol import COMPUTE_LOCK
from engine.turnstile import CoreTurnstile

WAIT_S = 10.0


def wait_for_waiters(lock: CoreTurnstile, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while lock.num_waiting < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lock.num_waiting} waiters, expected {count}")
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order():
    lock, order = CoreTurnstile(2), []

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
    lock, order = CoreTurnstile(2), []

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
        CoreTurnstile(2).release()
    turnstile = CoreTurnstile(2)
    turnstile.acquire(1)
    with pytest.raises(RuntimeError):
        turnstile.release(2)


def test_passes_on_one_core_each_run_side_by_side():
    turnstile = CoreTurnstile(2)
    turnstile.acquire(1)
    both = threading.Event()

    def other_model() -> None:
        with turnstile.cores(1):
            both.set()

    thread = threading.Thread(target=other_model)
    thread.start()
    assert both.wait(WAIT_S)  # granted while the first core is still held
    thread.join(WAIT_S)
    turnstile.release(1)
    assert not turnstile.locked()


def test_a_pass_on_every_core_is_not_overtaken_by_later_small_ones():
    """A one-core pass that asks after a two-core one waits behind it, though a core is free."""
    turnstile, order = CoreTurnstile(2), []

    def take(name: str, cores: int | None) -> None:
        with turnstile.cores(cores):
            order.append(name)

    turnstile.acquire(1)
    big = threading.Thread(target=take, args=("all cores", None))
    big.start()
    wait_for_waiters(turnstile, 1)
    small = threading.Thread(target=take, args=("one core", 1))
    small.start()
    wait_for_waiters(turnstile, 2)
    turnstile.release(1)
    big.join(WAIT_S)
    small.join(WAIT_S)
    assert order == ["all cores", "one core"]
    assert turnstile.need(64) == 2 and turnstile.need(None) == 2


def test_the_compute_turnstile_hands_out_this_machines_cores():
    assert isinstance(COMPUTE_LOCK, CoreTurnstile)
    assert COMPUTE_LOCK.total == (os.cpu_count() or 1)
