"""The README as a newcomer follows it: every `sh` block, in order, in one bash at the root of the
repository, each of which must succeed.

One shell runs them all, so what a block exports, the directory it enters and the processes it
starts in the background are there for the next, as in a terminal. The shell stops at the first
failing command (`set -euo pipefail`). Two things differ from a newcomer's terminal, both
visible here: the emulator's and the API's addresses (127.0.0.1:4566 and 127.0.0.1:7443 in the
README) become free ports, so that the test never meets another process; and the block marked
`<!-- readme-test: skip (...) -->` is left out: it is `cargo xtask ci`, the command running
this test.
"""
import os
import re
import signal
import socket
import subprocess
import time

from conftest import ROOT

SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b")
FENCE = re.compile(r"^```(\S*)\s*$")
ADDRESSES = ("127.0.0.1:4566", "127.0.0.1:7443")
# The first block may build (cargo run); the others run commands that take seconds.
BLOCK_TIMEOUT = 1800


def sh_blocks(text: str):
    """The README's `sh` blocks in order: (line number, code, skipped)."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang == "sh":
            previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            blocks.append((start + 1, "\n".join(body) + "\n", bool(SKIP.search(previous))))
    return blocks


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_parses_into_the_walk_through():
    blocks = sh_blocks((ROOT / "README.md").read_text())
    skipped = [code.strip() for _, code, skip in blocks if skip]
    assert skipped == ["cargo xtask ci"], f"only the CI command may be skipped, not {skipped}"
    run = "".join(code for _, code, skip in blocks if not skip)
    for needed in ("orgsec enroll", "orgsec remediate", "orgsec evidence verify", "terraform", "kill"):
        assert needed in run, f"the walk-through lost {needed!r}"


def test_every_readme_block_runs_in_order(tmp_path):
    blocks = sh_blocks((ROOT / "README.md").read_text())
    ports = {a: f"127.0.0.1:{free_port()}" for a in ADDRESSES}
    # A newcomer's environment: nothing of AWS, orgsec or Terraform set beforehand.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORGSEC_", "TF_"))}
    log_path = tmp_path / "readme.log"
    log = open(log_path, "w")
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--norc"],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=env,
        text=True,
        start_new_session=True,
    )
    ran = []
    try:
        shell.stdin.write("set -euo pipefail\n")
        for n, (line, code, skip) in enumerate(blocks):
            if skip:
                continue
            for readme_address, test_address in ports.items():
                code = code.replace(readme_address, test_address)
            script = tmp_path / f"block-{n}.sh"
            script.write_text(code)
            done = tmp_path / f"block-{n}.done"
            # The block's commands read nothing from the shell's own input (the next blocks).
            shell.stdin.write(f"source {script} </dev/null\ntouch {done}\n")
            shell.stdin.flush()
            deadline = time.monotonic() + BLOCK_TIMEOUT
            while not done.exists() and shell.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if not done.exists():
                log.flush()
                output = log_path.read_text()[-6000:]
                state = "timed out" if shell.poll() is None else f"failed (the shell exited {shell.returncode})"
                raise AssertionError(
                    f"the README's block at line {line} {state}:\n{code}\n--- output (tail) ---\n{output}"
                )
            ran.append(line)
        shell.stdin.close()
        shell.wait(timeout=60)
        assert shell.returncode == 0, log_path.read_text()[-4000:]
    finally:
        # The shell and whatever it left running in the background.
        try:
            os.killpg(shell.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        log.close()
    output = log_path.read_text()
    assert len(ran) == sum(1 for b in blocks if not b[2])
    # What the blocks promise shows in their output.
    assert re.search(r"Organization score [\d.]+ -> [\d.]+/100", output), "the demo ran to its end"
    assert re.search(r"0 new jobs; [1-9]\d* succeeded and verified, 0 failed, 0 wait for approval", output), output[-4000:]
    assert "evidence.zip verifies" in output
    assert re.search(r"org_score = \d", output), "the auditor read the posture"
