"""Two runs of runbooks sharing a lock key, started at the same instant from two folders, 100
times: exactly one proceeds each time (the machine-wide lock folder decides). An integration
test (not e2e) so that the ASan pass does not repeat its 200 runs."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from drbtest import check, main  # noqa: E402
from test_locks import holder, spawn_in  # noqa: E402


def test_race_of_two_folders_exactly_one_proceeds_100_times(c):
    # Both runs start at the same instant from two folders; the one that gets the lock holds
    # it until the other has been refused, so exactly one proceeds each time.
    wins = 0
    for i in range(100):
        release = c.path(f"release-{i}")
        rbs = [holder(c, f"f{j}-{i}", f"race-{j}", "lock: [db:race]", release) for j in (0, 1)]
        procs = [spawn_in(c, f"f{j}-{i}", "run", rbs[j], "--quiet", "--runs-dir", "runs")
                 for j in (0, 1)]
        try:
            end = time.monotonic() + 30
            while time.monotonic() < end and all(p.poll() is None for p in procs):
                time.sleep(0.005)
        finally:
            open(release, "w").close()
            codes = sorted(p.wait(timeout=60) for p in procs)
        check(codes == [0, 3], f"round {i}: exit codes {codes}")
        wins += 1
    print(f"lock race: exactly one of two proceeded {wins} of 100 times")
    check(wins == 100, "100 of 100")


if __name__ == "__main__":
    main(globals())
