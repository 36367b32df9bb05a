"""Runs a command in a pseudo-terminal, answers one prompt, prints everything it wrote.

Usage: python3 pty_run.py PROMPT ANSWER -- COMMAND [ARGS...]
Exits with the command's exit status (the e2e suite uses it for `rf agents promote`)."""

import os
import pty
import sys
import time

prompt, answer = sys.argv[1].encode(), sys.argv[2].encode()
command = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
seen = b""
answered = False
deadline = time.time() + 60
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and prompt in seen:
        os.write(fd, answer + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status) if answered else 99)
