"""``read_ahead``: the items of an iterator made by a thread a bounded number of items ahead, the same items in the
same order, errors raised where they happened, and nothing left running or held once the caller stops."""

from __future__ import annotations

import threading
import time
import weakref

import pytest

from components._common.datasets import read_ahead


class Item:
    """An item that can be watched for collection (``weakref``)."""

    def __init__(self, number: int):
        self.number = number


class Source:
    """Makes ``count`` items, recording how many it started making, its thread, and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None):
        self.count, self.fail_at = count, fail_at
        self.started = 0
        self.closed = False
        self.thread: threading.Thread | None = None
        self.made: list[weakref.ref] = []

    def __iter__(self):
        self.thread = threading.current_thread()
        try:
            for number in range(self.count):
                self.started += 1
                if number == self.fail_at:
                    raise KeyError(f"no row {number}")
                item = Item(number)
                self.made.append(weakref.ref(item))
                yield item
        finally:
            self.closed = True


def settle(source: Source, started: int) -> None:
    """Waits until ``source`` started making ``started`` items, then a moment more in case it runs further."""
    deadline = time.monotonic() + 10
    while source.started < started and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.02)


def test_items_in_order():
    assert [item.number for item in read_ahead(Source(50))] == list(range(50))
    assert list(read_ahead(iter([3, None, 0, None]))) == [3, None, 0, None]  # None is an item like another


def test_items_made_in_another_thread():
    source = Source(3)
    assert len(list(read_ahead(source))) == 3
    assert source.thread is not threading.current_thread()
    assert not source.thread.is_alive()


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_the_thread_is_at_most_depth_items_ahead(depth):
    source = Source(12)
    for taken, _ in enumerate(read_ahead(source, depth=depth), start=1):
        settle(source, min(taken + depth, 12))
        # The caller's item and at most ``depth`` more (made, or being made): depth + 1 alive.
        assert source.started == min(taken + depth, 12)
        alive = sum(made() is not None for made in source.made)
        assert alive <= depth + 1


def test_an_error_is_raised_after_the_items_before_it():
    taken = []
    with pytest.raises(KeyError, match="no row 3"):
        for item in read_ahead(Source(10, fail_at=3), depth=2):
            taken.append(item.number)
    assert taken == [0, 1, 2]


def test_an_error_keeps_its_type():
    def failing():
        yield 1
        raise ZeroDivisionError("division by zero in batch 2")

    reader = read_ahead(failing())
    assert next(reader) == 1
    with pytest.raises(ZeroDivisionError, match="division by zero in batch 2"):
        next(reader)


def test_closing_early_stops_the_thread_and_releases_the_items():
    source = Source(1000)
    items = iter(source)  # still referenced here: closed by read_ahead, not by its collection
    reader = read_ahead(items, depth=3)
    first = next(reader)
    settle(source, 4)
    reader.close()
    assert not source.thread.is_alive()
    assert source.closed  # the source's own cleanup ran
    assert source.started == 4  # nothing made after the close
    del first
    assert all(made() is None for made in source.made)


def test_an_error_in_the_caller_stops_the_thread():
    source = Source(1000)
    with pytest.raises(RuntimeError, match="caller failed"):
        for item in read_ahead(source):
            if item.number == 5:
                raise RuntimeError("caller failed")
    assert not source.thread.is_alive()
    assert source.closed
    assert source.started <= 7


def test_break_stops_the_thread():
    source = Source(1000)
    for item in read_ahead(source):
        if item.number == 2:
            break
    assert not source.thread.is_alive()
    assert source.closed


def test_empty_iterator():
    source = Source(0)
    assert list(read_ahead(source)) == []
    assert not source.thread.is_alive()
    assert list(read_ahead([])) == []


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="read_ahead depth must be at least 1, got 0"):
        next(read_ahead([1], depth=0))
