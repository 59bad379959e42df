"""drbook report --format html: one self-contained page whose inline SVG Gantt chart shows the
run: steps, waits, retries, approvals, rollbacks, the critical path, RTO and RPO against
targets and DNS convergence. Rendered in headless Chromium (Debian package chromium, installed
by scripts/setup): the rendered DOM must hold the chart's elements and figures, and the
screenshot must show the bars' colours."""
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from datetime import datetime, timedelta, timezone

from drbtest import check, main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

RICH = """
    version: 1
    name: region-failover-demo
    scenario: region-outage
    targets: { rto: 20s, rpo: 1h }
    params:
      counter: { type: string }
      stale_at: { type: string }
    notify:
      - on: [start, end]
        action: exec
        with: { argv: ["true"] }
    steps:
      - id: approve
        action: approval
        with: { message: "Fail over?", timeout: 1m }
      - id: promote
        action: exec
        with: { argv: [sh, -c, "n=$(cat \\"$0\\" 2>/dev/null || echo 0); echo $((n+1)) > \\"$0\\"; [ $n -ge 2 ]", "${params.counter}"] }
        retry: { attempts: 4, backoff: fixed, initial: 200ms }
        rollback:
          action: exec
          with: { argv: [sleep, "0.2"] }
      - id: scale
        for_each: "{'api', 'auth'}"
        as: svc
        action: sleep
        with: { duration: 300ms }
      - id: flip-dns
        action: lua
        script: return { last_stale_at = params.stale_at }
      - id: verify
        action: exec
        with: { argv: [sh, -c, "exit 3"] }
    on_failure: rollback
"""

OK = """
    version: 1
    name: ecs-task-failure
    targets: { rto: 2s, rpo: 0s }
    steps:
      - id: detect
        action: sleep
        with: { duration: 300ms }
      - id: replace
        action: exec
        with: { argv: [sleep, "0.5"] }
"""


def chromium(c, *args, timeout=90):
    """Runs headless Chromium in its own session and profile; kills the whole group on
    timeout or failure so no renderer outlives the test."""
    if not CHROMIUM:
        raise AssertionError("chromium is not installed (scripts/setup installs it)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--disable-background-networking",
           "--disable-sync", "--disable-component-update", "--disable-default-apps",
           "--mute-audio", f"--user-data-dir={c.path('chromium-profile')}", *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, cwd=c.dir)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return out, err


def png_pixels(path):
    """Decodes an 8-bit RGB or RGBA non-interlaced PNG (what Chromium writes): (w, h, rows)."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            check(depth == 8 and ctype in (2, 6) and interlace == 0, "8-bit RGB(A) PNG")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            cc = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def colour_count(png, rgb):
    w, h, bpp, rows = png
    want = bytes(rgb)
    return sum(1 for r in rows for x in range(0, w * bpp, bpp) if r[x:x + 3] == want)


def bar_pixels(html, fill):
    """The pixels the chart's bars of this fill colour must show in that colour: those wholly
    inside each bar and inside its outline (a critical bar's 2 px stroke, centred on its edge),
    from the bars' geometry in the page. The legend's swatches are not bars."""
    total = 0
    for m in re.finditer(r'<rect class="bar [^"]*" x="([0-9.]+)" y="([0-9.]+)" '
                         r'width="([0-9.]+)" height="([0-9.]+)" rx="2" fill="([^"]+)"'
                         r'( stroke="#222" stroke-width="2")?', html):
        if m.group(5) != fill:
            continue
        x, y, w, h = (float(m.group(i)) for i in range(1, 5))
        inset = 1.0 if m.group(6) else 0.0
        cols = math.floor(x + w - inset) - math.ceil(x + inset)
        rows = math.floor(y + h - inset) - math.ceil(y + inset)
        total += max(cols, 0) * max(rows, 0)
    return total


def self_contained(html):
    check("<script" not in html.lower(), "no script")
    check("<link" not in html.lower() and "@import" not in html, "no external style")
    rest = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    check(not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", rest, re.I),
          "no address outside the page")
    check(all(u.startswith("url(#") for u in re.findall(r"url\([^)]*\)", html)),
          "url() only to the page's own patterns")


def run_rich(c):
    rb = c.write("rich.yaml", RICH)
    now = datetime.now(timezone.utc)
    incident = (now - timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    stale = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    r = c.drbook("run", rb, "--yes", "--audit", "rich.jsonl", "--quiet", "-p",
                 f"counter={c.path('counter')}", "-p", f"stale_at={stale}",
                 "--incident-start", incident)
    check(r.code == 1, "the rich run fails at verify and rolls back", r)
    r = c.drbook("report", "rich.jsonl", "--format", "html")
    check(r.code == 0, "report written", r)
    with open(c.path("rich.html"), "w") as f:
        f.write(r.out)
    return r.out


def test_html_is_one_self_contained_page(c):
    html = run_rich(c)
    self_contained(html)
    check(html.count("<svg") == 1 and 'id="gantt"' in html, "one inline SVG chart")
    # notifications are listed, not drawn as steps that never ended
    check('data-step="notify[' not in html, "no notification rows in the chart")
    check("<h2>Notifications</h2>" in html and "notify[1]" in html, "notifications listed")
    check('class="bar started' not in html, "no bar stuck at started")


def test_rendered_chart_holds_the_run(c):
    run_rich(c)
    dom, err = chromium(c, "--dump-dom", "file://" + c.path("rich.html"))
    check("<svg" in dom and 'id="gantt"' in dom, "the chart is in the rendered DOM:\n" + err[-2000:])
    for step in ("approve", "promote", "scale", "scale[1]", "scale[2]", "flip-dns", "verify"):
        check(f'data-step="{step}"' in dom, f"row for {step}")
    check(re.search(r'class="bar ok critical"[^>]*>', dom) is not None, "critical bars outlined")
    crit = re.search(r"critical path \(([^)]*), outlined\): ([^<]*)<", dom)
    check(crit and crit.group(2).split(" → ") == ["approve", "promote", "scale", "flip-dns",
                                                   "verify"], f"critical path: {crit and crit.group(2)}")
    promote = dom[dom.index('data-step="promote"'):]
    promote = promote[:promote.index("</g>")]
    check(promote.count('class="retry"') == 2, "two failed attempts drawn on promote")
    check('class="approval approved"' in dom, "the approval is marked")
    check('data-step="rollback:promote"' in dom and 'class="bar rollback ok"' in dom,
          "the compensation has its row")
    check('class="marker rollback-begin"' in dom, "rollback start marked")
    check('class="marker dns-stale"' in dom and 'class="marker dns-converged"' in dom,
          "DNS convergence marked")
    check('class="marker incident"' in dom and 'class="detection"' in dom,
          "the time before the run is shown from the incident")
    check("RTO not measured" in dom and "RPO not measured" in dom, "a failed run has no RTO")
    check("RTO target 20s" in dom, "the RTO target is on the chart", )
    check(re.search(r'class="bar ok wait', dom), "waits drawn as waits")
    # the bars' colours on the screenshot against what the bars' geometry in the page says
    # (the run's timing sets the bars' widths, so the expectation comes from the page, not a
    # fixed figure), besides the legend's swatches of the same colours; retry ticks, backoff
    # bands and marker lines are drawn over the bars, so a quarter of their fill must show
    html = open(c.path("rich.html")).read()
    want = {}
    for what, rgb in (("green step bars", (0x5c, 0xb8, 0x5c)),
                      ("the failed step in red", (0xd9, 0x53, 0x4f)),
                      ("the rollback bar", (0x6f, 0x42, 0xc1))):
        fill = "#%02x%02x%02x" % rgb
        n = bar_pixels(html, fill)
        check(n >= 12, f"{what}: the page draws a bar with a visible fill ({n} px)")
        swatches = 120 * len(re.findall(r'<rect x="[0-9]+" y="[0-9]+" width="12" height="10" '
                                        f'fill="{fill}"/>', html))
        want[what] = (rgb, n // 4 + swatches)
    png = c.path("rich.png")
    # a loaded machine can capture before the page has painted: let virtual time run out, and
    # take the picture again (three tries) when the bars are not on it yet
    for _ in range(3):
        chromium(c, "--window-size=1000,900", "--virtual-time-budget=5000",
                 f"--screenshot={png}", "file://" + c.path("rich.html"))
        check(os.path.getsize(png) > 10000, "a screenshot was written")
        img = png_pixels(png)
        seen = {what: colour_count(img, rgb) for what, (rgb, _) in want.items()}
        if all(seen[what] >= n for what, (_, n) in want.items()):
            break
    for what, (_, n) in want.items():
        check(seen[what] >= n, f"{what} visible: {seen[what]} px, {n} wanted (bars, legend)")


def test_rto_against_target_on_the_chart(c):
    rb = c.write("ok.yaml", OK)
    r = c.drbook("run", rb, "--audit", "ok.jsonl", "--quiet")
    check(r.code == 0, "run", r)
    r = c.drbook("report", "ok.jsonl", "--format", "html")
    with open(c.path("ok.html"), "w") as f:
        f.write(r.out)
    self_contained(r.out)
    dom, _ = chromium(c, "--dump-dom", "file://" + c.path("ok.html"))
    m = re.search(r'class="marker rto".*?<text[^>]*>RTO ([0-9.]+m?s) \(target 2s: met\)</text>',
                  dom, re.S)
    check(m is not None, "the RTO marker says the figure against the target: " +
          "".join(re.findall(r'class="marker rto".{0,300}', dom)))
    check('class="marker rto-target"' in dom, "the target line is drawn (within the chart)")
    check("RPO not measured" in dom, "no RPO measured in this run")
    check("critical path" in dom and "detect → replace" in dom, "sequential steps: one chain")
    check('class="marker dns' not in dom, "no DNS marker without DNS data")


if __name__ == "__main__":
    main(globals())
