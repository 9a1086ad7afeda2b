"""An evaluation's report, twice: `report.md` (text, links) and `report.html` (one self-contained page to
look at: the success table, a bar chart of success with its 95 % intervals, per family one plan-beside-
reality GIF, the time per stage, and the command that produced it). Images are inlined, so the page can
be mailed or attached as one file."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

GIF_NAME = "plan_vs_reality.gif"


def command_line(config: dict, out: str) -> str:
    """The `vid2act eval` command that reproduces an evaluation (every option spelled out)."""
    return (f"vid2act eval --policy {config['policy']} --planner {config['planner']} --idm {config['idm']} "
            f"--bc {config['bc']} --tasks {','.join(config['tasks'])} --split {config['split']} "
            f"--episodes {config['episodes']} --first-seed {config['first_seed']} "
            f"--replan-every {config['replan_every']} --best-of {config.get('best_of', 1)} "  # before it: one drawing
            f"--steps {config['steps']} --guidance {config['guidance']} "
            f"--precision {config['precision']} --workers {config['workers']} --out {out}")


def describe(config: dict) -> str:
    if config["policy"] != "plan":
        return config["policy"]
    if config["replan_every"]:
        return f"plan, replanning every {config['replan_every']} actions (closed loop)"
    return "plan, open loop"


def markdown(info: dict, root: Path) -> str:
    config = info["config"]
    lines = [f"# vid2act eval: {describe(config)}", "",
             f"Planner `{config['planner']}`, IDM `{config['idm']}`, split `{config['split']}`, "
             f"{config['episodes']} episodes per family, {config['steps']} denoising steps, guidance "
             f"{config['guidance']}. {info['wall_seconds']:.0f} s wall, {info['episodes_per_hour']:.0f} episodes/hour "
             f"with {config['workers']} worker(s).", "",
             "| family | split | success | rate | 95 % interval (Wilson) | solved at some step | mean steps | "
             "mean replans | generate s | translate s | execute s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, a in info["aggregates"].items():
        family, split = name.split("/")
        s = a["mean_seconds"]
        lines.append(f"| {family} | {split} | {a['successes']}/{a['episodes']} | {a['success_rate']:.0%} | "
                     f"{a['wilson95'][0]:.0%}–{a['wilson95'][1]:.0%} | {a['solved_at_some_step']}/{a['episodes']} | "
                     f"{a['mean_steps']} | {a['mean_replans']} | "
                     f"{s['generate']:.2f} | {s['translate']:.3f} | {s['execute']:.2f} |")
    lines += ["", "## Plan beside reality", "",
              "Left: the plan frame the robot was heading for; right: what the camera saw.", ""]
    for r in info["episodes"]:
        rel = Path(r["folder"]) / "rollout" / "plan_vs_reality.mp4"
        if (root / rel).exists():
            lines.append(f"- {r['task']} seed {r['seed']} ({'success' if r['success'] else 'failure'}): "
                         f"[{rel}]({rel}) — \"{r['instruction']}\"")
    lines += ["", "Reproduce:", "", "```bash", command_line(config, "OUT"), "```"]
    return "\n".join(lines) + "\n"


def success_chart(info: dict) -> bytes:
    """PNG: success rate per family with its Wilson 95 % interval."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(info["aggregates"])
    rates = [info["aggregates"][n]["success_rate"] * 100 for n in names]
    low = [r - info["aggregates"][n]["wilson95"][0] * 100 for n, r in zip(names, rates)]
    high = [info["aggregates"][n]["wilson95"][1] * 100 - r for n, r in zip(names, rates)]
    figure, axes = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.2), dpi=110)
    colors = ["#4c72b0" if not n.startswith("all/") else "#dd8452" for n in names]
    axes.bar(range(len(names)), rates, yerr=[low, high], capsize=4, color=colors)
    for k, n in enumerate(names):
        a = info["aggregates"][n]
        inside = a["success_rate"] > 0.12  # a label inside a bar too short to hold it goes above its base, dark
        axes.text(k, 2, f"{a['successes']}/{a['episodes']}", ha="center", va="bottom", fontsize=8,
                  color="white" if inside else "black")
    axes.set_xticks(range(len(names)), [n.replace("/", "\n") for n in names], fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("success (%)")
    axes.set_title(f"{describe(info['config'])}: success, 95 % Wilson interval", fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _inline(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def page(info: dict, root: Path, out: str) -> str:
    """report.html: everything inline."""
    config = info["config"]
    e = html.escape
    rows = []
    for name, a in info["aggregates"].items():
        family, split = name.split("/")
        s = a["mean_seconds"]
        rows.append(f"<tr><td>{e(family)}</td><td>{e(split)}</td><td>{a['successes']}/{a['episodes']}</td>"
                    f"<td><b>{a['success_rate']:.0%}</b></td><td>{a['wilson95'][0]:.0%}–{a['wilson95'][1]:.0%}</td>"
                    f"<td>{a['solved_at_some_step']}/{a['episodes']}</td><td>{a['mean_steps']}</td>"
                    f"<td>{a['mean_replans']}</td><td>{s['generate']:.2f}</td>"
                    f"<td>{s['translate']:.3f}</td><td>{s['execute']:.2f}</td></tr>")
    gifs = []
    for r in info["episodes"]:
        gif = root / r["folder"] / "rollout" / GIF_NAME
        if gif.exists():
            verdict = "success" if r["success"] else "failure"
            gifs.append(f'<figure><img src="{_inline(gif.read_bytes(), "image/gif")}" alt="{e(r["task"])}">'
                        f'<figcaption><b>{e(r["task"])}</b> seed {r["seed"]}: <span class="{verdict}">{verdict}'
                        f'</span><br>“{e(r["instruction"])}”</figcaption></figure>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vid2act eval: {e(describe(config))}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, td:nth-child(2), th {{ text-align: left; }}
figure {{ display: inline-block; margin: 6px 12px 6px 0; vertical-align: top; width: 330px; }}
figure img {{ width: 320px; image-rendering: pixelated; border: 1px solid #aaa; }}
figcaption {{ font-size: 12px; }}
.success {{ color: #1a7f37; font-weight: bold; }} .failure {{ color: #b42318; font-weight: bold; }}
code {{ background: #f4f4f4; padding: 6px; display: block; white-space: pre-wrap; word-break: break-all; }}
</style></head><body>
<h1>vid2act eval: {e(describe(config))}</h1>
<p>Planner <code style="display:inline;padding:1px">{e(config['planner'])}</code>, IDM
<code style="display:inline;padding:1px">{e(config['idm'])}</code>, split <b>{e(config['split'])}</b>,
{config['episodes']} episodes per family, {config['steps']} denoising steps, guidance {config['guidance']};
{info['wall_seconds']:.0f} s wall, {info['episodes_per_hour']:.0f} episodes/hour with {config['workers']} worker(s).</p>
<img src="{_inline(success_chart(info), 'image/png')}" alt="success per family with 95 % intervals">
<h2>Success and time per stage</h2>
<table><tr><th>family</th><th>split</th><th>success</th><th>rate</th><th>95 % interval (Wilson)</th>
<th>solved at some step</th><th>mean steps</th><th>mean replans</th><th>generate s</th><th>translate s</th><th>execute s</th></tr>
{''.join(rows)}</table>
<p>Success is the task's test when the episode ends; "solved at some step" counts the episodes where it held
after any action (what evaluations that stop at the first success count). Seconds are per episode: generate
(planning), translate (the IDM), execute (PyBullet, rendering included).</p>
<h2>Plan beside reality</h2>
<p>Per family, one episode: left, the plan frame the robot was heading for; right, what the camera saw.</p>
{''.join(gifs) or '<p>(this policy draws no plans)</p>'}
<h2>Reproduce</h2>
<code>{e(command_line(config, out))}</code>
</body></html>
"""


def write_reports(info: dict, root: Path, out: str) -> None:
    """report.md and report.html into `root` (the evaluation's temporary folder, renamed to `out` after)."""
    from vid2act.outputs import write_bytes
    write_bytes(root / "report.md", markdown(info, root).encode())
    write_bytes(root / "report.html", page(info, root, out).encode())
