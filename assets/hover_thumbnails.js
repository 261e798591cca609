// Shows the hovered point's image beside the cursor, cropped from the run's sprite atlas (a few
// PNG sheets the app serves statically; the chart's layout.meta.atlas says where and how they are
// cut, customdata[1] and [4] are the point's set and index). A sheet is fetched the first time a
// point on it is hovered and then stays in the browser's cache, so no image travels with the chart.
// The Embeddings page runs this in a zero-height component iframe; it reaches the app's own page,
// where the charts are, and attaches itself once per browser tab.
(function () {
  const win = window.parent, document = win.document;
  if (win.__bdThumbs) return; win.__bdThumbs = true;
  const SIZE = 84;  // px on screen
  const box = document.createElement("div");
  box.id = "bd-hover-thumb";
  box.style.cssText = "position:fixed;display:none;pointer-events:none;z-index:100000;background:#fff;"
    + "border:1px solid #999;padding:3px;box-shadow:0 2px 6px rgba(0,0,0,.3)";
  const img = document.createElement("div");
  img.style.cssText = "width:" + SIZE + "px;height:" + SIZE + "px;background-repeat:no-repeat;"
    + "image-rendering:pixelated";
  box.appendChild(img);
  document.body.appendChild(box);
  const sheets = {};  // url -> true once loaded (box.dataset.ready says whether the image shows)
  function sheet(url) {
    if (!(url in sheets)) {
      sheets[url] = false;
      const loader = new win.Image();
      loader.onload = function () {
        sheets[url] = true;
        if (box.dataset.url === url) box.dataset.ready = "1";
      };
      loader.src = url;
    }
    return sheets[url];
  }
  function attach(gd) {
    if (gd.__bdThumb || typeof gd.on !== "function") return;
    gd.__bdThumb = true;
    gd.on("plotly_hover", function (ev) {
      const atlas = gd.layout && gd.layout.meta && gd.layout.meta.atlas;
      const p = ev.points && ev.points[0], cd = p && p.customdata;
      if (!atlas || !cd || !(cd[1] in atlas.counts)) return;
      const index = Number(cd[4]), k = index % atlas.per_sheet, scale = SIZE / atlas.tile;
      const url = atlas.url + cd[1] + "-" + Math.floor(index / atlas.per_sheet) + ".png";
      const col = k % atlas.per_row, row = Math.floor(k / atlas.per_row);
      img.style.backgroundImage = 'url("' + url + '")';
      img.style.backgroundSize = atlas.per_row * atlas.tile * scale + "px auto";
      img.style.backgroundPosition = -col * atlas.tile * scale + "px " + -row * atlas.tile * scale + "px";
      box.dataset.url = url;
      box.dataset.point = cd[1] + "#" + index;
      box.dataset.ready = sheet(url) ? "1" : "";
      const r = gd.getBoundingClientRect(), e = ev.event;
      const x = e && e.clientX ? e.clientX - 110 : r.left + 10, y = e && e.clientY ? e.clientY - 110 : r.top + 10;
      box.style.left = Math.max(x, 0) + "px"; box.style.top = Math.max(y, 0) + "px"; box.style.display = "block";
    });
    gd.on("plotly_unhover", function () { box.style.display = "none"; });
  }
  win.setInterval(function () { document.querySelectorAll(".js-plotly-plot").forEach(attach); }, 400);
})();
