// A clip on its event page: while it plays, show the boxes of the latest analysed frame at or before
// the playing time (each frame's boxes are in a <template data-t="seconds">, rendered by the station).
"use strict";
document.querySelectorAll(".clip-stage").forEach((stage) => {
  const video = stage.querySelector("video");
  const overlay = stage.querySelector(".clip-overlay");
  const frames = Array.from(stage.querySelectorAll("template[data-t]"))
    .map((template) => [parseFloat(template.dataset.t), template])
    .sort((a, b) => a[0] - b[0]);
  let shown = null;
  const draw = () => {
    let current = null;
    for (const [time, template] of frames) {
      if (time <= video.currentTime + 0.05) current = template;
    }
    if (current === shown) return;
    shown = current;
    overlay.replaceChildren(...(current ? [current.content.cloneNode(true)] : []));
    overlay.dataset.t = current ? current.dataset.t : "";
  };
  for (const name of ["loadeddata", "timeupdate", "seeked", "play"]) video.addEventListener(name, draw);
  draw();
});
