#!/bin/bash
# Runs one command as a process whose memory, page cache included, is capped: evicts the model file from the page
# cache, makes a cgroup v1 memory child with the limit, runs the command inside it, prints the group's peak usage
# and removes the group. Needs root and a writable cgroup v1 memory controller (docs/memory.md).
#   bench/memory_limit.sh LIMIT MODEL.gguf COMMAND [ARGS...]      e.g. LIMIT = 4G, 4096M or bytes
set -euo pipefail
limit=${1:?usage: memory_limit.sh LIMIT MODEL.gguf COMMAND [ARGS...]}
model=${2:?usage: memory_limit.sh LIMIT MODEL.gguf COMMAND [ARGS...]}
shift 2
root=/sys/fs/cgroup/memory
[ -w "$root" ] || { echo "memory_limit.sh: $root is not a writable cgroup v1 memory controller" >&2; exit 1; }
bytes=$(numfmt --from=iec "${limit%B}")
/usr/bin/python3 - "$model" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
cg="$root/moe-bench-$$"
mkdir "$cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo "$bytes" > "$cg/memory.limit_in_bytes"
status=0
bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$@" || status=$?
echo "memory_limit.sh: limit $limit, peak usage $(numfmt --to=iec "$(cat "$cg/memory.max_usage_in_bytes")") (page cache included), exit $status" >&2
exit $status
