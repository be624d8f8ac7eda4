# shellcheck shell=bash
# Serves a directory on loopback for the shell tests, with Python's
# http.server (which ignores query strings). `serve DIR LOG` starts it, sets
# served_url and served_pid, and returns once it answers. The caller's EXIT
# trap calls stop_serving.
serve() {
  local dir=$1 log=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir" >"$log" 2>&1 &
  served_pid=$!
  served_url=http://127.0.0.1:$port
  for _ in $(seq 50); do
    curl -fs -o /dev/null "$served_url/" && return 0
    sleep 0.1
  done
  echo "serve: $dir did not answer on $served_url" >&2
  return 1
}

served_pid=
# Ends the server `serve` started, if any (for the caller's EXIT trap).
stop_serving() {
  if [[ -n $served_pid ]]; then kill "$served_pid" 2>/dev/null || true; fi
}
