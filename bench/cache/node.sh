#!/bin/bash
# One node of bench/cache (bench.py runs it as the node container's command):
#
#   node.sh NAME URL PROXY
#
# Says it is ready, waits for the start signal, pulls URL once through PROXY
# (the cold phase), checksums what it received on the way, writes the result
# to /ctl/cold.NAME, then idles so the warm phase can `podman exec` into it.
# /ctl is the benchmark's control directory, bind-mounted into every node.
#
# The start signal is the FIFO /ctl/go: every node blocks reading it, and
# bench.py, once all nodes are ready, writes one line per node, so they all
# start within the same instant without polling.
#
# Result line: <curl exit> <HTTP status> <bytes> <curl's seconds> <X-Cache>
#              <sha256 of the body> <start epoch s> <end epoch s>
set -u
name=$1 url=$2 proxy=$3
tmp=$(mktemp -d)
touch "/ctl/ready.$name"
read -r _ </ctl/go
start=$(date +%s.%N)
curl -sS -D $tmp/headers -w '%{stderr}\nwrite-out %{http_code} %{size_download} %{time_total}\n' \
    -x "$proxy" "$url" 2>$tmp/curl.err | sha256sum >$tmp/sum
rc=${PIPESTATUS[0]}
end=$(date +%s.%N)
set -- $(grep '^write-out ' $tmp/curl.err | tail -1)
status=${2:-000} bytes=${3:-0} seconds=${4:-0}
x_cache=$(grep -i '^X-Cache:' $tmp/headers 2>/dev/null | awk '{print $2}' | tail -1)
sum=$(cut -d' ' -f1 $tmp/sum)
echo "$rc $status $bytes $seconds ${x_cache:--} $sum $start $end" >"/ctl/cold.$name.tmp"
grep -v '^write-out \|^$' $tmp/curl.err >"/ctl/cold.$name.err"
mv "/ctl/cold.$name.tmp" "/ctl/cold.$name"
exec sleep infinity
