"""Group commit (runtime/batching.py): calls that arrive while a batch runs go together
in the next one, each caller gets its own outcome."""

import asyncio

import pytest

from huiyuan.runtime.batching import Batcher


class Recorder:
    """A batch function that records the batches it ran and answers each item doubled;
    an item "bad" is refused on its own, an item "boom" fails its whole batch."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = asyncio.Event()

    async def run(self, items):
        self.batches.append(list(items))
        await self.gate.wait()
        if "boom" in items:
            raise RuntimeError("the batch failed")
        return [ValueError(f"refused {i}") if i == "bad" else i * 2 for i in items]


def test_calls_that_arrive_while_a_batch_runs_go_together_in_the_next():
    async def scenario():
        recorder = Recorder()
        batcher = Batcher(recorder.run, max_size=3)
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0)  # the first batch starts with the one call there is
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4, 5)]
        await asyncio.sleep(0)
        recorder.gate.set()
        return recorder.batches, await first, await asyncio.gather(*rest)

    batches, first, rest = asyncio.run(scenario())
    assert batches == [[1], [2, 3, 4], [5]]  # in the order they came, at most max_size at once
    assert (first, rest) == (2, [4, 6, 8, 10])


def test_each_caller_raises_its_own_refusal_and_a_failed_batch_fails_all_its_callers():
    async def scenario():
        recorder = Recorder()
        batcher = Batcher(recorder.run)
        recorder.gate.set()
        together = await asyncio.gather(*(batcher.submit(i) for i in (1, "bad", 3)), return_exceptions=True)
        failed = await asyncio.gather(*(batcher.submit(i) for i in (4, "boom")), return_exceptions=True)
        after = await batcher.submit(6)  # a failed batch leaves the batcher working
        return together, failed, after

    together, failed, after = asyncio.run(scenario())
    assert together[0] == 2 and together[2] == 6
    assert isinstance(together[1], ValueError) and str(together[1]) == "refused bad"
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert after == 12


def test_a_caller_that_goes_away_leaves_the_batch_to_finish_for_the_others():
    async def scenario():
        recorder = Recorder()
        batcher = Batcher(recorder.run)
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0)
        leaving, staying = asyncio.ensure_future(batcher.submit(2)), asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0)
        leaving.cancel()
        recorder.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await first, await staying, recorder.batches

    assert asyncio.run(scenario()) == (2, 6, [[1], [2, 3]])
