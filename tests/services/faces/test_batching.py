"""The batcher the pipeline's stages plug into: items that wait go through together, in order, each with its own
answer or error, and none is left waiting."""

import contextvars
import threading
from concurrent.futures import wait

import pytest

from services.faces.batching import Batcher, Job, Stage

TIMEOUT = 10


class Blocked:
    """A first stage whose first turn holds until released, so that later items pile up behind it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.turns: list[list[int]] = []

    def __call__(self, batch: list[Job[int, int]]) -> list[int]:
        self.started.set()
        assert self.release.wait(TIMEOUT)
        self.turns.append([job.item for job in batch])
        return [job.item * 10 for job in batch]


def test_items_that_arrive_while_a_stage_is_busy_go_through_its_next_turn_together():
    first = Blocked()
    second_turns: list[list[int]] = []

    def second(batch: list[Job[int, int]]) -> list[int]:
        second_turns.append([job.value for job in batch])
        return [job.value + 1 for job in batch]

    batcher = Batcher([Stage("first", first), Stage("second", second)], most=8)
    head = batcher.submit([1])
    assert first.started.wait(TIMEOUT)
    rest = batcher.submit([2, 3, 4])
    first.release.set()
    done, _ = wait(head + rest, timeout=TIMEOUT)
    assert len(done) == 4
    assert [f.result() for f in head + rest] == [11, 21, 31, 41]
    assert first.turns == [[1], [2, 3, 4]]
    assert sorted(v for turn in second_turns for v in turn) == [10, 20, 30, 40]


def test_a_turn_takes_at_most_the_batch_size():
    first = Blocked()
    batcher = Batcher([Stage("first", first)], most=2)
    head = batcher.submit([0])
    assert first.started.wait(TIMEOUT)
    rest = batcher.submit([1, 2, 3, 4, 5])
    first.release.set()
    wait(head + rest, timeout=TIMEOUT)
    assert [f.result() for f in head + rest] == [0, 10, 20, 30, 40, 50]
    assert first.turns == [[0], [1, 2], [3, 4], [5]]


def test_an_item_failed_alone_leaves_the_others_of_its_turn():
    def first(batch: list[Job[int, int]]) -> list[int | None]:
        made: list[int | None] = []
        for job in batch:
            if job.item < 0:
                job.fail(ValueError(f"negative {job.item}"))
                made.append(None)
            else:
                made.append(job.item)
        return made

    def second(batch: list[Job[int, int]]) -> list[int]:
        assert all(job.value is not None for job in batch)  # the failed one went no further
        return [job.value * 2 for job in batch]

    futures = Batcher([Stage("first", first), Stage("second", second)], most=8).submit([1, -1, 2])
    wait(futures, timeout=TIMEOUT)
    assert futures[0].result() == 2 and futures[2].result() == 4
    with pytest.raises(ValueError, match="negative -1"):
        futures[1].result()


def test_an_error_out_of_a_turn_fails_every_item_of_it():
    def broken(batch: list[Job[int, int]]) -> list[int]:
        raise RuntimeError("the network failed")

    futures = Batcher([Stage("first", lambda batch: [0] * len(batch)), Stage("second", broken)], most=8).submit([1, 2])
    done, _ = wait(futures, timeout=TIMEOUT)
    assert len(done) == 2
    for future in futures:
        with pytest.raises(RuntimeError, match="the network failed"):
            future.result()


def test_jobs_and_stage_calls_carry_the_callers_context():
    request = contextvars.ContextVar("request", default="none")
    seen: list[str] = []

    def first(batch: list[Job[int, int]]) -> list[int]:
        seen.extend(job.context.run(request.get) for job in batch)
        return [job.item for job in batch]

    stage = Stage("first", first)
    request.set("r-1")
    (future,) = Batcher([stage], most=8).submit([7])
    assert future.result(timeout=TIMEOUT) == 7
    assert seen == ["r-1"]
    assert stage.run(request.get) == "r-1"
    assert stage.run(threading.current_thread).name.startswith("first")
