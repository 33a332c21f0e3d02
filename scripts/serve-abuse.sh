#!/usr/bin/env bash
# serve-abuse.sh: `nnmark serve` on the paper's MNIST model under hostile load, on
# loopback only, each part bounded in time. Prints, one line each:
#   1. wrk, 16 connections, 30 s: requests, errors, p50, p99
#   2. 50 slow sockets (one byte a second) for 15 s while valid requests are timed
#   3. a 64 MiB chunked body: status, resident memory growth (VmRSS, VmHWM)
#   4. a PNG bomb (28x28 header, 256 MiB of pixel data): status, milliseconds
#   5. 1,000 malformed requests of 30+ kinds: statuses, no 5xx, resident memory growth
#   6. 10 pipelined requests on one connection: answers, in order
# Usage: scripts/serve-abuse.sh [MODEL]   (default: the quickstart's model, else
#        runs/serve-abuse/paper-mnist.safetensors, trained for 1 epoch when missing)
# Needs build/nnmark, wrk and python3. Exit code: 0 every check held, 1 one failed, 2 usage.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,13p' "$0" | cut -c3-
  exit 0
fi
(( $# <= 1 )) || { echo "usage: scripts/serve-abuse.sh [MODEL]" >&2; exit 2; }
cd "$(dirname "$0")/.."
for tool in build/nnmark wrk python3; do
  command -v "$tool" >/dev/null || [[ -x "$tool" ]] || { echo "serve-abuse.sh: $tool is missing" >&2; exit 2; }
done

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

model="${1:-}"
if [[ -z "$model" ]]; then
  model=runs/quickstart/mnist-content.safetensors
  [[ -f "$model" ]] || model=runs/serve-abuse/paper-mnist.safetensors
fi
if [[ ! -f "$model" ]]; then
  bash datasets/fetch.sh mnist >&2
  mkdir -p "$(dirname "$model")"
  echo "serve-abuse.sh: training the paper's MNIST network for 1 epoch into $model" >&2
  build/nnmark train --dataset mnist --epochs 1 --quiet --out "$model" >&2
fi

build/nnmark serve --model "$model" --host 127.0.0.1 --port 0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
port=""
for _ in $(seq 600); do
  port="$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/serve.out")"
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "serve-abuse.sh: the server printed no port" >&2; exit 1; }
url="http://127.0.0.1:$port/v1/models/default:predict"
echo "nnmark serve (pid $server_pid) on $url, model $model"

# One valid request: the first MNIST test image when the data is here, else a blank one.
python3 - "$work/body.json" <<'EOF'
import json, os, sys
path = "datasets/mnist/t10k-images-idx3-ubyte"
pixels = list(open(path, "rb").read()[16:16 + 784]) if os.path.exists(path) else [0] * 784
json.dump({"instances": [[pixels[r * 28:(r + 1) * 28] for r in range(28)]]}, open(sys.argv[1], "w"))
EOF

cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json", "rb"); wrk.body = f:read("*a"); f:close()
EOF
failed=0
wrk_out="$(timeout 60 wrk -t2 -c16 -d30s --latency -s "$work/post.lua" "$url")"
requests="$(awk '/requests in/ {print $1}' <<<"$wrk_out")"
socket_errors="$(sed -n 's/.*Socket errors: \(.*\)/\1/p' <<<"$wrk_out")"
non_2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$wrk_out")"
p50="$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")"
p99="$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")"
echo "1. wrk 16 connections 30 s: ${requests:-?} requests, socket errors: ${socket_errors:-none}," \
     "non-2xx: ${non_2xx:-0}, p50 $p50, p99 $p99"
[[ -z "$socket_errors" && -z "$non_2xx" && -n "$requests" ]] || failed=1

# The raw-socket parts; python3 exits 1 when one of their checks fails.
timeout 300 python3 - "$port" "$server_pid" "$work/body.json" <<'EOF' || failed=1
import base64, json, socket, struct, sys, threading, time, zlib

port, pid, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
path = "/v1/models/default:predict"
ok = True

def memory():  # (VmRSS, VmHWM) of the server in MB
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))

def connect(timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def receive_all(s):
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError:
        pass
    return data

def responses(data):  # [(status, body)] of the HTTP responses in data
    out, at = [], 0
    while (at := data.find(b"HTTP/1.1 ", at)) >= 0:
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            break
        head = data[at:end].decode("latin-1")
        length = next((int(l.split(":")[1]) for l in head.split("\r\n") if l.lower().startswith("content-length:")), 0)
        out.append((int(head[9:12]), data[end + 4:end + 4 + length]))
        at = end + 4 + length
    return out

def post(payload, headers="Content-Type: application/json\r\n", close=True, to=path):
    return (f"POST {to} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(payload)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + payload

def exchange(request, timeout=10):  # status of the answer to one request on its own connection, 0: none
    with connect(timeout) as s:
        try:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)  # the request is all there is: a truncated one fails at once
        except OSError:
            pass
        got = responses(receive_all(s))
    return got[0][0] if got else 0

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")

# 2. Slowloris: 50 sockets trickling a request a byte a second, reopened when dropped,
# while valid requests are sent one after another and timed.
stop, dropped, slow_lock = time.time() + 15, [0], threading.Lock()
def slow_client():
    trickle = post(body, close=False)
    while time.time() < stop:
        try:
            with connect() as s:
                for byte in trickle:
                    if time.time() >= stop:
                        return
                    s.sendall(bytes([byte]))
                    time.sleep(1)
        except OSError:
            with slow_lock:
                dropped[0] += 1
slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(50)]
for t in slow:
    t.start()
time.sleep(1)
latencies, unanswered = [], 0
while time.time() < stop - 0.5:
    start = time.time()
    status = exchange(post(body))
    latencies.append(time.time() - start)
    unanswered += status != 200
    time.sleep(0.05)
for t in slow:
    t.join(timeout=5)
p99 = percentile(latencies, 99)
print(f"2. 50 slow sockets 15 s: {len(latencies) - unanswered} of {len(latencies)} valid requests answered 200, "
      f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
      f"slow sockets dropped by the server {dropped[0]} times")
ok &= unanswered == 0 and p99 < 1

# 3. 64 MiB chunked body, sent until the server answers (it stops reading at --max-body).
rss0, hwm0 = memory()
s = connect(30)
s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          "Transfer-Encoding: chunked\r\n\r\n".encode())
chunk, sent = b"10000\r\n" + b"[" * 65536 + b"\r\n", 0
s.settimeout(0.5)
try:
    while sent < 64 << 20:
        s.sendall(chunk)
        sent += 65536
    s.sendall(b"0\r\n\r\n")
except OSError:
    pass
s.settimeout(10)
got = responses(receive_all(s))
s.close()
time.sleep(0.2)
rss1, hwm1 = memory()
status = got[0][0] if got else 0
message = json.loads(got[0][1])["error"] if got else "no answer"
print(f"3. 64 MiB chunked body: status {status} after {sent >> 20} MiB sent ({message}); "
      f"VmRSS {rss0:.1f} -> {rss1:.1f} MB, peak VmHWM {hwm0:.1f} -> {hwm1:.1f} MB")
ok &= status == 413 and rss1 - rss0 < 50 and hwm1 - hwm0 < 50

# 4. PNG bomb: a 28x28 gray header over zlib data inflating to 256 MiB.
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
bomb = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\0" * (256 << 20), 9)) + png_chunk(b"IEND", b""))
request = post(json.dumps({"instances": [{"b64": base64.b64encode(bomb).decode()}]}).encode())
start = time.time()
status = exchange(request)
ms = (time.time() - start) * 1000
print(f"4. PNG bomb ({len(bomb) / 1e6:.2f} MB file, 256 MiB of pixels): status {status} in {ms:.0f} ms")
ok &= status == 400 and ms < 50

# 5. 1,000 malformed requests, each on its own connection; no answer at all counts as 0.
png_header = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
kinds = [
    b"", b"\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
    b"FOO /v1/models/default HTTP/1.1\r\n\r\n", b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n",
    b"GET /v1/models/default HTTP/1.1\r\nX: " + b"b" * 9000 + b"\r\n\r\n",
    b"GET /v1/models/default HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
    b"GET /v1/models/default HTTP/1.1\r\nHost: x\r\nRange: bytes=zz\r\n\r\n",
    b"DELETE /v1/models/default HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /v1/models/default:predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /nowhere HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST " + path.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1;" + b"e" * 100000 + b"\r\n",
    b"POST " + path.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
    b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
    post(b"{}", "Content-Type: multipart/form-data; boundary=x\r\n"),
    post(b"a=b" * 5000, "Content-Type: application/x-www-form-urlencoded\r\n"),
    post(b"{\"instances\": ["), post(b"null"), post(b"[]"), post(b"{\"instances\": [[1, 2]]}"),
    post(b"{\"instances\": [" + b"[" * 100000), post(b"{\"instances\": [\"\xff\xfe\"]}"),
    post(b"{\"instances\": [{\"b64\": \"!!!!\"}]}"),
    post(json.dumps({"instances": [{"b64": png_header}]}).encode()),
    post(json.dumps({"instances": [[[300] * 28] * 28]}).encode()),
    post(json.dumps({"instances": [[[0] * 28] * 28] * 65}).encode()),
    post(json.dumps({"instances": [[[0] * 28] * 28], "signature_name": "nope"}).encode()),
    post(body[:len(body) // 2]),
    post(b"{\"instances\": [1e999]}"),
    post(b"{\"inputs\": {\"x\": " + b"[" * 100000), post(b"{\"instances\": [], \"inputs\": []}"),
    post(json.dumps({"instances": [{"tag": "foo", "sensor": [[1, 2]]}] * 64}).encode()),
    post(json.dumps({"examples": [{"image": [256.5] * 784}]}).encode(), to="/v1/models/default:classify"),
    post(json.dumps({"examples": [{f"f{i}": i for i in range(50000)}]}).encode(), to="/v1/models/default:classify"),
    post(b"{\"examples\": [{\"image\": " + b"[" * 100000, to="/v1/models/default/labels/x:classify"),
    post(b"{}", to="/v1/models/default/versions/99999999999999999999:predict"),
    post(b"{}", to="/v1/models/default:regress"),
    b"POST /v1/models/other:predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
]
def malformed(i):
    return exchange(kinds[i % len(kinds)], timeout=15)
for i in range(100):  # warm-up: the allocator's first growth is not a leak
    malformed(i)
rss0, _ = memory()
statuses = {}
for i in range(1000):
    status = malformed(i)
    statuses[status] = statuses.get(status, 0) + 1
time.sleep(0.2)
rss1, _ = memory()
fives = sum(n for s, n in statuses.items() if s >= 500)
print(f"5. 1000 malformed requests of {len(kinds)} kinds: statuses "
      + ", ".join(f"{s or 'closed'} x{n}" for s, n in sorted(statuses.items()))
      + f"; {fives} 5xx; VmRSS {rss0:.1f} -> {rss1:.1f} MB")
ok &= fives == 0 and rss1 - rss0 < 100 and exchange(b"GET /v1/models/default HTTP/1.1\r\nConnection: close\r\n\r\n") == 200

# 6. Ten pipelined requests, 1..10 images each, in one write.
instances = json.loads(body)["instances"]
pipelined = b"".join(post(json.dumps({"instances": instances * n}).encode(), close=n == 10) for n in range(1, 11))
start = time.time()
with connect(15) as s:
    s.sendall(pipelined)
    got = responses(receive_all(s))
ms = (time.time() - start) * 1000
in_order = [len(json.loads(b).get("predictions", [])) for _, b in got] == list(range(1, 11))
print(f"6. 10 pipelined requests: {len(got)} answers, statuses {sorted(set(s for s, _ in got))}, "
      f"{'in order' if in_order else 'NOT in order'}, {ms:.0f} ms")
ok &= len(got) == 10 and in_order
sys.exit(0 if ok else 1)
EOF

kill -0 "$server_pid" 2>/dev/null || { echo "serve-abuse.sh: the server died" >&2; exit 1; }
echo "server still up, resident $(awk '/VmRSS/ {print $2, $3}' "/proc/$server_pid/status")"
[[ "$failed" == 0 ]] && echo "all checks held" || echo "some checks FAILED"
exit "$failed"
