"""The batching machinery of the inference pipeline, apart from what its stages compute.

Callers hand in items and wait for their futures. Each stage runs on one thread of its own; items that arrive
while a stage is busy wait in its queue, and its next turn takes all of them (up to `most`), so that one network
pass serves several callers (cheaper per item than one pass each). A turn hands what it made to the next stage's
queue and asks for one turn there: while a later stage works on one batch, an earlier one already works on the
next. A stage's work may fail one item alone (`Job.fail`); an exception out of the work fails every item of the
turn, so none is left waiting. The queues are deques, whose append and popleft are thread-safe: no lock."""

import contextvars
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Item = TypeVar("Item")  # what a caller hands in
Answer = TypeVar("Answer")  # what the caller gets back
T = TypeVar("T")


@dataclass(eq=False)
class Job(Generic[Item, Answer]):
    """One caller's item on its way through the stages."""

    item: Item
    context: contextvars.Context  # the caller's, so log lines carry its request id
    value: Any = None  # what the last stage made of it
    result: Future[Answer] = field(default_factory=Future)

    def fail(self, error: BaseException) -> None:
        """This item's answer is the error; the others of its turn go on."""
        self.result.set_exception(error)


class Stage(Generic[Item, Answer]):
    """One step of the batcher: a thread of its own and the jobs waiting for its next turn. `work` gets the jobs
    of a turn and returns each job's next value (the answer, at the last stage), in order."""

    def __init__(self, name: str, work: Callable[[list[Job[Item, Answer]]], Sequence[Any]]):
        self.name = name
        self.work = work
        self.waiting: deque[Job[Item, Answer]] = deque()
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call fn on this stage's thread, between its turns, in the caller's context, and wait for its result."""
        return self.thread.submit(contextvars.copy_context().run, partial(fn, *args, **kwargs)).result()


class Batcher(Generic[Item, Answer]):
    """Items through `stages` in order, each stage's turn taking up to `most` waiting jobs."""

    def __init__(self, stages: Sequence[Stage[Item, Answer]], most: int):
        self.stages = list(stages)
        self.most = most

    def submit(self, items: Sequence[Item]) -> list[Future[Answer]]:
        """Queue the items at the first stage; each future holds its item's answer or error."""
        jobs = [Job[Item, Answer](item, contextvars.copy_context()) for item in items]
        first = self.stages[0]
        first.waiting.extend(jobs)
        for _ in jobs:  # one turn per item; an earlier turn may take it
            first.thread.submit(self._turn, 0)
        return [job.result for job in jobs]

    def _turn(self, index: int) -> None:
        stage = self.stages[index]
        batch = _take(stage.waiting, self.most)
        if not batch:
            return
        try:
            made = stage.work(batch)
            going_on = [job for job in batch if not job.result.done()]  # not failed alone by the work
            if index == len(self.stages) - 1:
                for job, answer in zip(batch, made, strict=True):
                    if not job.result.done():
                        job.result.set_result(answer)
                return
            for job, value in zip(batch, made, strict=True):
                job.value = value
            following = self.stages[index + 1]
            following.waiting.extend(going_on)
            following.thread.submit(self._turn, index + 1)
        except Exception as error:
            for job in batch:
                if not job.result.done():
                    job.fail(error)


def _take(queue: deque[T], most: int) -> list[T]:
    """Up to `most` items from the front of a queue other threads append to."""
    taken: list[T] = []
    while queue and len(taken) < most:
        taken.append(queue.popleft())
    return taken


def failed(error: BaseException) -> Future[Any]:
    """A future that already holds an error: an item that failed before it reached the batcher."""
    future: Future[Any] = Future()
    future.set_exception(error)
    return future
