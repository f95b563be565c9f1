"""End to end: a ``rig run`` (a real child process on a simulated bench) whose webhook receiver
is down when the run ends exits without waiting long, says what it owes, and the receiver gets
the run's message once when it is back and a sender runs on the store (as ``rig serve`` does)."""

from __future__ import annotations

import subprocess
import sys
import time

from rig.bench import load_bench
from rig.notify import start_notifier
from rig.sim.bench import SimBench, SimSlot
from tests.notify_support import Receiver, wait_until
from tests.serve_support import BASE, MAC_BLOCK


def test_a_run_whose_receiver_is_down_is_announced_once_it_is_back(tmp_path):
    db = tmp_path / "records.sqlite"
    receiver = Receiver()                                     # down: connection refused
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=60.0,
                        base=BASE, first=70, mac_block=MAC_BLOCK) as sim:
        with sim.bench_path.open("a", encoding="utf-8") as bench_file:
            bench_file.write(f'\n[[notify.webhook]]\nurl = "{receiver.url}"\n'
                             'events = ["run-finished"]\n')
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "rig.cli", "run", str(sim.bench_path),
                               "--method", "hard", "--quiet", "--db", str(db)],
                              capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "1 notification(s) not delivered yet" in done.stderr
    assert receiver.url not in done.stderr and took < 30, took
    with receiver:
        notifier = start_notifier(str(db), load_bench(sim.bench_path))
        try:
            wait_until(lambda: receiver.ledger, timeout=15, what="the run's message")
            time.sleep(0.3)
        finally:
            notifier.close()
    [message] = receiver.bodies
    assert message["event"] == "run-finished" and message["run"]["status"] == "passed"
    assert message["counts"] == {"factory-default": 1}
