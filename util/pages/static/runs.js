// The runs index (util/pages/runs.py): ticking runs gives the command that compares them.
(() => {
const boxes = Array.from(document.querySelectorAll("input.pick")), cmd = document.getElementById("compare-cmd");
const update = () => {
  const picked = boxes.filter(b => b.checked).map(b => b.dataset.path);
  cmd.textContent = picked.length >= 2 ? "python -m util.compare " + picked.join(" ")
                                       : "tick two or more runs to get the command that compares them";
  cmd.classList.toggle("ready", picked.length >= 2);
};
boxes.forEach(b => b.addEventListener("change", update));
update();
})();
