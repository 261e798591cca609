// Shows the hovered point's image (carried in customdata[1]) beside the cursor. The Embeddings
// page runs this in a zero-height component iframe; it reaches the app's own page, where the
// charts are, and attaches itself once per browser tab.
(function () {
  const win = window.parent, document = win.document;
  if (win.__bdThumbs) return; win.__bdThumbs = true;
  const box = document.createElement("div");
  box.style.cssText = "position:fixed;display:none;pointer-events:none;z-index:100000;"
    + "background:#fff;border:1px solid #999;padding:3px;box-shadow:0 2px 6px rgba(0,0,0,.3)";
  document.body.appendChild(box);
  function attach(gd) {
    if (gd.__bdThumb || typeof gd.on !== "function") return;
    gd.__bdThumb = true;
    gd.on("plotly_hover", function (ev) {
      const p = ev.points && ev.points[0], cd = p && p.customdata;
      if (!cd || typeof cd[1] !== "string" || cd[1].indexOf("data:image") !== 0) return;
      box.innerHTML = '<img src="' + cd[1] + '" width="84" height="84" style="image-rendering:pixelated">';
      const r = gd.getBoundingClientRect(), e = ev.event;
      const x = e && e.clientX ? e.clientX - 110 : r.left + 10, y = e && e.clientY ? e.clientY - 110 : r.top + 10;
      box.style.left = Math.max(x, 0) + "px"; box.style.top = Math.max(y, 0) + "px"; box.style.display = "block";
    });
    gd.on("plotly_unhover", function () { box.style.display = "none"; });
  }
  win.setInterval(function () { document.querySelectorAll(".js-plotly-plot").forEach(attach); }, 400);
})();
