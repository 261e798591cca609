#!/bin/bash
# Start a Ray cluster for the Ray job backend: `ray-cluster.sh head` on the node that holds the runs
# folder (and runs the app), `ray-cluster.sh worker HEAD_HOST` on every other node.
# Every node needs the project at the same path with `make test`'s .venv (Ray included), and the
# runs and data folders mounted at the same paths (docs/distributed.md, "Many runs on a Ray cluster").
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${RAY_PORT:-6379}
case "${1:-}" in
  head)   exec .venv/bin/ray start --head --port "$port" --include-dashboard=false --disable-usage-stats ;;
  worker) exec .venv/bin/ray start --address "${2:?give the head node host name}:$port" ;;
  stop)   exec .venv/bin/ray stop ;;
  *)      echo "usage: $0 head | worker HEAD_HOST | stop" >&2; exit 2 ;;
esac
