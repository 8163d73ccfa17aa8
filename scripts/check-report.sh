#!/usr/bin/env bash
# Runs `orgsec demo` and checks its report.html in headless Chromium: the page loads, and the
# DOM Chromium builds from it shows what the demo's JSON says (the organization's score before
# and after, a row per account, a line per account in the trend chart, a row per remediation).
#
#   bash scripts/check-report.sh
#
# Chromium comes from /usr/bin/chromium (or ORGSEC_CHROMIUM); when it is missing it is installed
# with apt-get (Debian's `chromium` package).
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${ORGSEC_CHROMIUM:-}"
if [[ -z "$chromium" ]]; then
    chromium=$(command -v chromium || command -v chromium-browser || true)
fi
if [[ -z "$chromium" ]]; then
    echo "check-report: no Chromium; installing Debian's chromium with apt-get" >&2
    sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
    chromium=$(command -v chromium || true)
    if [[ -z "$chromium" ]]; then
        echo "check-report: apt-get installed chromium but there is no chromium on PATH" >&2
        exit 1
    fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --locked -q -p orgsec -- demo --dir "$work/demo" --output json > "$work/demo.json"

# The flags keep Chromium from reaching out to the network, which a closed machine refuses.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile")
timeout 120 "$chromium" "${flags[@]}" --dump-dom "file://$work/demo/report.html" > "$work/dom.html" 2> "$work/chromium.log" || {
    echo "check-report: Chromium failed to load the report:" >&2
    cat "$work/chromium.log" >&2
    exit 1
}
timeout 120 "$chromium" "${flags[@]}" --window-size=1200,1800 --screenshot="$work/report.png" \
    "file://$work/demo/report.html" >> "$work/chromium.log" 2>&1 || {
    echo "check-report: Chromium failed to render the report:" >&2
    cat "$work/chromium.log" >&2
    exit 1
}

python3 - "$work/demo.json" "$work/dom.html" "$work/report.png" <<'PY'
import json, sys
from html.parser import HTMLParser

demo = json.load(open(sys.argv[1]))
dom = open(sys.argv[2], encoding="utf-8").read()
png = open(sys.argv[3], "rb").read()

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.rows, self.series, self.jobs, self.stack = {}, [], [], [], []
        self.current = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and a.get("id") in ("org-before", "org-after"):
            self.current = a["id"]
        if tag == "tr" and "data-account" in a:
            self.rows.append(a["data-account"])
        if tag == "tr" and a.get("class") == "job":
            self.jobs.append(a.get("data-state"))
        if tag == "polyline" and a.get("class") == "series":
            self.series.append((a.get("data-account"), a.get("points", "").split()))
    def handle_data(self, data):
        if self.current:
            self.ids[self.current] = data.strip()
            self.current = None

p = Page()
p.feed(dom)
problems = []
def want(cond, what):
    if not cond:
        problems.append(what)

want(png.startswith(b"\x89PNG") and len(png) > 20000, f"the screenshot is not a rendered page ({len(png)} bytes)")
want(p.ids.get("org-before") == f"{demo['before']['org_score']:.1f}", f"org-before {p.ids.get('org-before')!r}")
want(p.ids.get("org-after") == f"{demo['after']['org_score']:.1f}", f"org-after {p.ids.get('org-after')!r}")
want(demo["after"]["org_score"] > demo["before"]["org_score"], "the demo raises the score")
accounts = [a["account_id"] for a in demo["accounts"]]
want(p.rows == accounts, f"account rows {p.rows} != {accounts}")
want(sorted(a for a, _ in p.series) == sorted(accounts), f"trend lines for {[a for a, _ in p.series]}")
want(all(len(points) >= 2 for _, points in p.series), "every trend line has a point before and after")
want(p.jobs == [r["state"] for r in demo["remediations"]], f"remediation rows {p.jobs}")
if problems:
    print("check-report: the report in Chromium does not show what the demo did:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"check-report: ok ({len(p.rows)} accounts, {len(p.series)} trend lines, {len(p.jobs)} remediations, "
      f"score {demo['before']['org_score']:.1f} -> {demo['after']['org_score']:.1f}, screenshot {len(png)} bytes)")
PY
