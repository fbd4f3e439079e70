# Sourced by scripts/test and scripts/demo: starts the Azure emulator (demo world) and the local
# server pointed at it, on free ports (or STACK_EMU_PORT / STACK_API_PORT), and waits until both
# answer; `stack_stop` stops them. Sets stack_dir, emu_url and api_url. Needs the debug binaries.
# STACK_STORE (default an embedded store in stack_dir) and STACK_SERVER_ARGS go to the server.
stack_dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
stack_wait() {
    for _ in $(seq 1 150); do
        curl -s -o /dev/null "$2" && return 0
        kill -0 "$1" 2>/dev/null || { echo "$3 did not start:"; cat "$stack_dir/$3.log"; exit 1; }
        sleep 0.1
    done
    echo "$3 did not answer at $2"; exit 1
}
emu_port=${STACK_EMU_PORT:-$(free_port)}
emu_url=http://127.0.0.1:$emu_port
target/debug/azure-emulator --listen "127.0.0.1:$emu_port" --world emulator/worlds/demo.json > "$stack_dir/emulator.log" 2>&1 &
stack_emu=$!
api_port=${STACK_API_PORT:-$(free_port)}
api_url=http://127.0.0.1:$api_port
AZURE_AUTHORITY_HOST=$emu_url AZURE_RESOURCE_MANAGER_ENDPOINT=$emu_url AZURE_GRAPH_ENDPOINT=$emu_url \
AZURE_VALIDATION_BUDGET_MS=${STACK_BUDGET_MS:-2000} target/debug/azure-connect-local --listen "127.0.0.1:$api_port" \
    --store "${STACK_STORE:-embedded:$stack_dir/store}" --events-file "$stack_dir/events.jsonl" \
    ${STACK_SERVER_ARGS:-} > "$stack_dir/server.log" 2>&1 &
stack_api=$!
stack_stop() { kill $stack_api $stack_emu 2>/dev/null || true; wait $stack_api $stack_emu 2>/dev/null || true; }
stack_wait $stack_emu "$emu_url/_emulator/world" emulator
stack_wait $stack_api "$api_url/connections" server
