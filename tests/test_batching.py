"""Group commit (database/batching.py): calls that arrive while a batch runs go together
in the next one, each caller gets its own outcome; while other calls are in flight a
batch lets the calls on their way join it, for a bounded number of turns of the loop."""

import asyncio

import pytest

from huiyuan.database.batching import GATHER_TURNS, Batcher


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


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _arriving_two_turns_apart(batcher: Batcher, items) -> list:
    """The items' answers, submitted a call every two turns of the loop, as gRPC lets
    calls in on a busy service."""
    calls = []
    for item in items:
        calls.append(asyncio.ensure_future(batcher.submit(item)))
        await _turns(2)
    return await asyncio.gather(*calls)


def test_while_other_calls_are_in_flight_a_batch_waits_for_the_calls_on_their_way():
    async def scenario():
        elsewhere, here = Recorder(), Recorder()
        here.gate.set()
        other = asyncio.ensure_future(Batcher(elsewhere.run).submit(0))  # in flight until its gate opens
        await _turns(2)
        answers = await _arriving_two_turns_apart(Batcher(here.run), (1, 2, 3))
        other_still_in_flight = not other.done()  # the batch went once no more calls came
        elsewhere.gate.set()
        await other
        return here.batches, answers, other_still_in_flight

    batches, answers, other_still_in_flight = asyncio.run(scenario())
    assert batches == [[1, 2, 3]]
    assert answers == [2, 4, 6] and other_still_in_flight


def test_with_no_other_call_in_flight_a_call_goes_at_once():
    async def scenario():
        here = Recorder()
        here.gate.set()
        answers = await _arriving_two_turns_apart(Batcher(here.run), (1, 2, 3))
        return here.batches, answers

    assert asyncio.run(scenario()) == ([[1], [2], [3]], [2, 4, 6])


def test_a_batch_waits_no_longer_than_its_turns_allow():
    async def scenario():
        elsewhere, here = Recorder(), Recorder()
        here.gate.set()
        other = asyncio.ensure_future(Batcher(elsewhere.run).submit(0))
        await _turns(2)
        batcher = Batcher(here.run, max_size=10 * GATHER_TURNS)  # the turns, not the size, end it
        calls = [asyncio.ensure_future(batcher.submit(1))]
        for item in range(2, 2 * GATHER_TURNS + 1):  # a new call every turn: never quiet
            await _turns(1)
            calls.append(asyncio.ensure_future(batcher.submit(item)))
        await asyncio.gather(*calls)
        elsewhere.gate.set()
        await other
        return here.batches

    batches = asyncio.run(scenario())
    assert GATHER_TURNS <= len(batches[0]) <= GATHER_TURNS + 2  # it went after GATHER_TURNS turns
    assert [x for b in batches for x in b] == list(range(1, 2 * GATHER_TURNS + 1))
