"""HTML pages written with dominate (the training page here; test.py's results page in evaluation.report).
Every file name and label goes through dominate's text escaping, and image
links are URL-quoted, so a crafted file name shows as text and cannot inject markup."""
import os
import time
from urllib.parse import quote

import dominate
from dominate import tags


def img_cell(src, label, width):
    with tags.td(style="word-wrap: break-word; text-align: center; vertical-align: top;"):
        with tags.a(href=quote(src)):
            tags.img(style=f"width:{width}px", src=quote(src), alt=label)
        tags.br()
        tags.p(label)


def write_page(doc, out_dir):
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(doc.render())
    return path


def write_training_page(web_dir, opt, epochs, curve, order=()):
    """checkpoints/NAME/web/index.html: the loss curve (when there is one), then the images saved for each epoch
    ({epoch: {label: relative path}}), newest epoch first, labels in ``order`` (the model's) and then by name.
    The page reloads itself every minute while training runs."""
    doc = dominate.document(title=f"Training: {opt.name}")
    with doc.head:
        tags.meta(http_equiv="refresh", content="60")
    with doc:
        tags.h1(f"{opt.name}: training ({opt.model})")
        tags.p(f"Updated {time.strftime('%Y-%m-%d %H:%M:%S')}. Losses are in loss_log.txt beside the checkpoints.")
        if curve:
            tags.h2("Losses")
            with tags.a(href=quote(curve)):
                tags.img(src=quote(curve), alt="loss curve", id="loss-curve", style="max-width: 100%")
        tags.h2("Images")
        with tags.table(border=1, style="table-layout: fixed;", id="images"):
            for epoch in sorted(epochs, reverse=True):
                with tags.tr():
                    tags.td(f"epoch {epoch}")
                    for label, src in sorted(epochs[epoch].items(), key=lambda kv: (
                            order.index(kv[0]) if kv[0] in order else len(order), kv[0])):
                        img_cell(src, label, opt.display_winsize)
    return write_page(doc, web_dir)
