"""Make the two pictures in docs/gateway.md: `aiosim top` during a run, and the run's Chrome trace.

    .venv/bin/python docs/screenshots.py        # writes docs/top.png and docs/trace.png (~1 min)

A kernel (rr, 2 workers, a KV pool small enough to swap) with its gateway serves three SDK agents
and two `openai` clients streaming through the gateway. Mid-run, `kernel.top.screen()` is drawn
cell by cell with Pillow; at the end the trace from `kernel.trace.build_trace()` is drawn with
matplotlib the way Perfetto lays it out (a process per agent, a track per lane, the workers'
plans, preemption and swap markers), since Perfetto's UI is a web app that is not available offline.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from pathlib import Path

import matplotlib
import openai
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console

from agents.launch.kernelproc import KernelProcess
from agents.sdk import Client
from kernel.top import ACTIVE, Rate, screen, total_tokens
from kernel.trace import build_trace

DOCS = Path(__file__).resolve().parent
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FLAGS = ["--scheduler", "rr", "--quantum", "4", "--max-batch", "3", "--workers", "2", "--kv-pool-bytes", "1M",
         "--gateway", "127.0.0.1:0"]


def workload(k: KernelProcess, state: Path) -> list[threading.Thread]:
    with Client(k.address, token=(state / "operator.token").read_text().strip()) as op:
        keys = [op.identity_add(name=f"http-{i}")["secret"] for i in range(2)]
    log = state / "gateway.log"
    while not re.search(r"serving (http://\S+) ", log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    url = re.search(r"serving (http://\S+) ", log.read_text()).group(1)

    def sdk_agent(name: str) -> None:
        with Client(k.address, name=name, secret_file=False) as c:
            for step in range(3):
                pending = [c.submit("llm.generate", prompt=f"{name} step {step} " * 8, max_new_tokens=48) for _ in range(2)]
                [p.result() for p in pending]

    def http_agent(key: str) -> None:
        client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
        for step in range(4):
            list(client.chat.completions.create(model="tiny-llama-v1", max_tokens=40, stream=True, seed=step, temperature=0.8,
                                                messages=[{"role": "user", "content": f"step {step}"}]))

    threads = [threading.Thread(target=sdk_agent, args=(f"math-{i}",)) for i in range(3)]
    threads += [threading.Thread(target=http_agent, args=(key,)) for key in keys]
    for t in threads:
        t.start()
    return threads


def draw_terminal(renderable, path: Path, width: int = 118) -> None:
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(renderable, console.options, pad=True)
    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono.ttf"), 15)
    bold = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono-Bold.ttf"), 15)
    cell_w, cell_h = font.getbbox("M")[2], 19
    image = Image.new("RGB", (cell_w * width + 24, cell_h * len(lines) + 24), (24, 26, 33))
    pen = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        col = 0
        for seg in line:
            style = seg.style
            color = style.color.get_truecolor() if style and style.color else None
            fill = tuple(color) if color else (220, 223, 228)
            if style and style.dim:
                fill = tuple(int(c * 0.6) for c in fill)
            for ch in seg.text:
                pen.text((12 + col * cell_w, 12 + row * cell_h), ch, fill=fill, font=bold if style and style.bold else font)
                col += 1
    image.save(path)


def draw_trace(trace: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    events = trace["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    tracks = sorted(names, key=lambda t: (t[0], t[1]))
    row = {t: i for i, t in enumerate(tracks)}
    fig, ax = plt.subplots(figsize=(15, 0.42 * len(tracks) + 1.4))
    palette = plt.get_cmap("tab20")
    rids = sorted({e["name"] for e in events if e["ph"] == "X" and e.get("cat") == "slice"})
    for e in events:
        t = (e["pid"], e["tid"])
        if e["ph"] == "X" and t in row:
            color = palette(rids.index(e["name"]) % 20) if e["cat"] == "slice" else "#5c6bc0"
            ax.barh(row[t], e["dur"] / 1e3, left=e["ts"] / 1e3, height=0.7, color=color, edgecolor="white", linewidth=0.4)
        elif e["ph"] == "i" and t in row:
            marker, color = ("v", "#e53935") if e["name"] == "preempted" else (("<", "#fb8c00") if e["name"] == "swap out" else (">", "#43a047"))
            ax.plot(e["ts"] / 1e3, row[t] - 0.42, marker=marker, color=color, markersize=5)
    ax.set_yticks(range(len(tracks)), [f"{procs[p]} / {names[(p, tid)]}" for p, tid in tracks], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the first arrival")
    ax.set_title("aiosim launch --trace / aiosim call sched.stats --trace, as Perfetto shows it: slices per agent lane, "
                 "plans per worker;  v preempted  < swap out  > swap in", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="aiosim-shots-"))
    k = KernelProcess.start(FLAGS, state)
    try:
        k.wait_ready(2)
        threads = workload(k, state)
        rate, best = Rate(), None
        while any(t.is_alive() for t in threads):
            stats = k.stats()
            rate.update(time.monotonic(), total_tokens(stats))
            num_active = sum(r["state"] in ACTIVE for r in stats["requests"])
            if rate.per_s and (best is None or num_active > best[0]):
                best = (num_active, screen(stats, time.monotonic(), rate.per_s, k.address))
            time.sleep(0.5)
        draw_terminal(best[1], DOCS / "top.png")
        draw_trace(build_trace(k.stats()), DOCS / "trace.png")
    finally:
        k.stop()


if __name__ == "__main__":
    main()
