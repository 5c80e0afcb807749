#!/usr/bin/env bash
# Issue a fresh API key for each example user and print how to query the demo as them.
set -euo pipefail
BIN=${BIN:-.venv/bin}
echo
echo "== Example users (examples/README.md says who may read what) =="
for user in alice bob carol dave erin root; do
  "$BIN/clearance" keys revoke "$user" >/dev/null
  key=$("$BIN/clearance" keys create "$user" | tail -n 1)
  echo
  echo "# $user"
  echo "curl -s http://127.0.0.1:8000/v1/chat -H 'Authorization: Bearer $key' \\"
  echo "     -H 'Content-Type: application/json' -d '{\"message\": \"How many days of annual leave do we get?\"}'"
done
echo
echo "The staff page: open http://127.0.0.1:8000/ and sign in with one of the keys above."
echo "Search instead of chat: POST /v1/search with {\"query\": \"...\", \"top_k\": 5}."
echo "API docs: http://127.0.0.1:8000/docs   Stop the server with Ctrl-C."
echo
