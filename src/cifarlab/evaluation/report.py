"""report.html: one self-contained page (inline CSS, PNGs as base64 data URIs, no scripts, no
external resources) with the headline numbers, the per-class table and every plot; plus the
atomic file writer every output goes through."""

from __future__ import annotations

import base64
import html

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:120px;background:#fafafa}
.card .v{font-size:1.6em;font-weight:600}.card .k{color:#666;font-size:.85em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
tr.weak td{background:#fdecea}
img{max-width:100%;height:auto;display:block;margin:8px 0}
figure{margin:16px 0}figcaption{color:#555;font-size:.9em}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _num(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _card(label: str, value: str, element_id: str = "") -> str:
    ident = f' id="{element_id}"' if element_id else ""
    return (f'<div class="card"><div class="v"{ident}>{html.escape(value)}</div>'
            f'<div class="k">{html.escape(label)}</div></div>')


def _corruption_section(section: dict | None) -> str:
    """The robustness summary and table (its heatmap is among the plots)."""
    if not section:
        return ""
    e = html.escape
    head = "".join(f"<th>severity {s}</th>" for s in section["severities"])
    rows = "".join(
        f"<tr><td>{e(name)}</td>" + "".join(f"<td>{cells[str(s)]:.1%}</td>" for s in section["severities"])
        + f"<td><b>{section['mean_per_corruption'][name]:.1%}</b></td></tr>"
        for name, cells in section["accuracy"].items())
    main = (f"mean over the 15 corruptions <b>{section['mean_15']:.2%}</b> "
            f"({section['ratio_15']:.3f} of clean), " if section["mean_15"] is not None else "")
    return (f"<h2>Robustness to corruptions</h2><p>Clean accuracy {section['clean_accuracy']:.2%}; "
            f"{main}mean over all {len(section['accuracy'])} scored {section['mean_all']:.2%}. "
            f"Images: {e(section['source'])}.</p>"
            f"<table><tr><th>corruption</th>{head}<th>mean</th></tr>{rows}</table>")


def _figure(name: str, caption: str, png: bytes) -> str:
    e = html.escape
    return (f'<figure><img alt="{e(name)}" src="{data_uri(png)}"><figcaption>{e(caption)} '
            f"({e(name)})</figcaption></figure>")


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _open_set_section(section: dict | None, plots: dict[str, tuple[str, bytes]]) -> str:
    """The open-set numbers and the score histogram (kept out of the general plots)."""
    if not section:
        return ""
    e = html.escape
    if not section["available"]:
        return f"<h2>Open set</h2><p>{e(section['note'])}.</p>"
    threshold = "off" if section["threshold"] is None else f"{section['threshold']:.4g}"
    cards = [_card("score", section["score"]), _card("threshold", threshold),
             _card("test images rejected", _share(section["rejected_share"]), "rejected-share"),
             _card("accuracy on accepted test images", _share(section["accepted_accuracy"]))]
    if "outside_images" in section:
        cards += [_card("outside images", f"{section['outside_images']:,}"),
                  _card("AUROC (outside vs test)", _num(section["auroc"], 3), "ood-auroc"),
                  _card("FPR95 (outside accepted at 95% test kept)", _share(section["fpr95"])),
                  _card("outside images flagged unknown", _share(section["flagged_outside"]))]
    note = f" {section['tta_note']}." if "tta_note" in section else ""
    figure = _figure(section["plot"], *plots[section["plot"]]) if section.get("plot") in plots else ""
    return (f"<h2>Open set</h2><p>{e(section['rejection'])}. An image scoring above the threshold "
            f"is &ldquo;unknown&rdquo; (none of the classes); the rejected share is what that costs "
            f"on the test images.{e(note)}</p>"
            f'<div class="cards">{"".join(cards)}</div>{figure}')


def render_report(metrics: dict, plots: dict[str, tuple[str, bytes]], weakest: list[str]) -> str:
    """plots: file name -> (caption, PNG bytes), in display order."""
    e = html.escape
    info = metrics["evaluation"]
    model_meta = metrics.get("model_metadata", {})
    cards = [_card("accuracy", f"{metrics['accuracy']:.2%}", "accuracy")]
    cards += [_card(f"top-{k} accuracy", f"{v:.2%}") for k, v in metrics["top_k_accuracy"].items()]
    cards += [
        _card("log-loss", _num(metrics["log_loss"])),
        _card("Brier score (sum over classes)", _num(metrics["brier_score"])),
        _card(f"ECE ({metrics['calibration']['bins']} bins)", _num(metrics["calibration"]["ece"])),
        _card("ROC AUC macro / micro", f"{_num(metrics['roc_auc']['macro'], 3)} / "
                                       f"{_num(metrics['roc_auc']['micro'], 3)}"),
        _card("avg precision macro / micro", f"{_num(metrics['average_precision']['macro'], 3)} / "
                                             f"{_num(metrics['average_precision']['micro'], 3)}"),
        _card("macro F1", _num(metrics["macro"]["f1"])),
        _card("images", f"{metrics['num_samples']:,}"),
    ]
    rows = []
    for r in metrics["per_class"]:
        cls = ' class="weak"' if r["class"] in weakest else ""
        rows.append(
            f"<tr{cls}><td>{e(r['class'])}</td><td>{r['support']}</td><td>{_num(r['accuracy'], 3)}</td>"
            f"<td>{_num(r['precision'], 3)}</td><td>{_num(r['f1'], 3)}</td>"
            f"<td>{_num(r['roc_auc'], 3)}</td><td>{_num(r['average_precision'], 3)}</td></tr>")
    errors = "".join(
        f"<tr><td>{x['index']}</td><td>{e(x['true'])}</td><td>{e(x['pred'])}</td>"
        f"<td>{x['confidence']:.3f}</td></tr>" for x in metrics["most_confident_errors"])
    open_set = metrics.get("open_set")
    shown_apart = (open_set or {}).get("plot")
    figures = "".join(_figure(name, caption, png) for name, (caption, png) in plots.items()
                      if name != shown_apart)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cifarlab evaluate: {e(info['model_name'])} on {e(info['split'])}</title>
<style>{CSS}</style></head><body>
<h1>Evaluation of {e(info['model_name'])}</h1>
<p class="meta">model <code>{e(info['model_path'])}</code> ({e(str(model_meta.get('model', '?')))},
input {info['input_size'][0]}x{info['input_size'][1]}) &middot; dataset <code>{e(info['dataset_source'])}</code>
split <b>{e(info['split'])}</b>, fingerprint {e(info['dataset_fingerprint'])} &middot;
test-time augmentation: {'mirror + 1-pixel shifts, 6 views' if info['tta'] else 'off'} &middot;
{info['seconds']['total']:.1f} s &middot; {e(info['finished'])}</p>
<div class="cards">{''.join(cards)}</div>
<p>Weakest classes: {e(', '.join(weakest))}. Brier score: mean over images of the sum over classes
of the squared difference between probability and one-hot label (0 is perfect, 2 the worst).</p>
<h2>Per class</h2>
<table><tr><th>class</th><th>support</th><th>accuracy (recall)</th><th>precision</th><th>F1</th>
<th>ROC AUC</th><th>avg precision</th></tr>{''.join(rows)}</table>
{_corruption_section(metrics.get("corruptions"))}
{_open_set_section(open_set, plots)}
<h2>Plots</h2>{figures}
<h2>Most confidently wrong</h2>
<table><tr><th>index</th><th>true</th><th>predicted</th><th>confidence</th></tr>{errors}</table>
<p class="meta">All numbers are in metrics.json next to this file.</p>
</body></html>
"""
