"""HTML pages written with dominate. Every file name and label goes through dominate's text escaping, and image
links are URL-quoted, so a crafted file name shows as text and cannot inject markup."""
import os
from urllib.parse import quote

import dominate
from dominate import tags


def _img_cell(src, label, width):
    with tags.td(style="word-wrap: break-word; text-align: center; vertical-align: top;"):
        with tags.a(href=quote(src)):
            tags.img(style=f"width:{width}px", src=quote(src), alt=label)
        tags.br()
        tags.p(label)


def write_results_page(out_dir, opt, items, rows, mean):
    """results/NAME/PHASE_EPOCH/index.html: every item's images side by side, the metrics table, the options."""
    doc = dominate.document(title=f"Results: {opt.name}")
    with doc:
        tags.h1(f"{opt.name}: {opt.phase}, epoch {opt.epoch}")
        if mean:
            tags.h2("Metrics (mean)")
            with tags.table(border=1, id="metrics-mean"):
                with tags.tr():
                    for k in mean:
                        tags.th(k)
                with tags.tr():
                    for v in mean.values():
                        tags.td(f"{v:.4f}")
        tags.h2("Images")
        with tags.table(border=1, style="table-layout: fixed;", id="images"):
            for item in items:
                with tags.tr():
                    tags.td(item["name"])
                    for label, src in item["images"].items():
                        _img_cell(src, label, opt.display_winsize)
        if rows:
            tags.h2("Metrics per image")
            keys = list(rows[0].keys())
            with tags.table(border=1, id="metrics"):
                with tags.tr():
                    for k in keys:
                        tags.th(k)
                for row in rows:
                    with tags.tr():
                        for k in keys:
                            v = row.get(k, "")
                            tags.td(f"{v:.4f}" if isinstance(v, float) else str(v))
        tags.h2("Options")
        tags.pre("\n".join(f"{k}: {v}" for k, v in sorted(vars(opt).items())))
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(doc.render())
    return path
