"""Every HTML page the project writes, in one place. Each page is one static file that opens from disk (file://)
with no network: its style and scripts, kept here as real files under static/, are inlined when it is written, and
what a script reads ships inside the page (Chromium blocks fetch() of local files).

- ``html``: the document (static/page.css, page.js), header, image viewer, formatting of values, links and data.
- ``table``: the one data table every page uses (columns declared once: header, group, sorting, cell), and the
  summary of results at a glance.
- ``results``: test.py's results page, results/NAME/PHASE_EPOCH/index.html.
- ``slices``: its slice browser for volumes (static/slices.js, slices.css) and the preview files it reads.
- ``runs``: the runs index results/index.html, comparison pages (``python -m util.compare``), summary.json.
- ``training``: the training page checkpoints/NAME/web/index.html and its curves (written by util.visualizer).

Pages read results as typed records (util.results); they import nothing above util.
"""
