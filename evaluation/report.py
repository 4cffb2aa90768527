"""test.py's results page, results/NAME/PHASE_EPOCH/index.html. File names and labels go through dominate's text
escaping and image links are URL-quoted, so a crafted file name shows as text and cannot inject markup."""
import dominate
from dominate import tags

from util.html import img_cell, write_page


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
                        img_cell(src, label, opt.display_winsize)
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
    return write_page(doc, out_dir)
