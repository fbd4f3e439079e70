# Sourced by scripts/test and scripts/bench: installs the Python tools into .venv when
# tests/requirements.txt changed, starts moto on a free loopback port, points the AWS SDK at it,
# and stops it when the calling script exits.
venv=${AZC_VENV:-.venv}
if [ ! -f "$venv/.installed" ] || [ tests/requirements.txt -nt "$venv/.installed" ]; then
    echo "== installing test tools into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
    touch "$venv/.installed"
fi

mkdir -p target
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== starting moto on 127.0.0.1:$port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    kill -0 $moto_pid 2>/dev/null || { cat target/moto.log; echo "moto did not start"; exit 1; }
    sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL_EVENTBRIDGE
