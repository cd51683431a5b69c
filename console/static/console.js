// Draws every chart of the page: each <div data-chart="id"> takes its ECharts option
// from the JSON data block <script type="application/json" id="id"> the server wrote
// (data, never code: the page's Content-Security-Policy runs no inline script).
(function () {
  "use strict";
  function draw() {
    var boxes = document.querySelectorAll("[data-chart]");
    var drawn = [];
    boxes.forEach(function (box) {
      var source = document.getElementById(box.getAttribute("data-chart"));
      if (!source || typeof echarts === "undefined") { return; }
      var chart = echarts.init(box);
      var option = JSON.parse(source.textContent);
      // no animation: the figures are read, not watched, and the page is ready in one frame
      // (an animated chart repaints its canvas every frame for a second)
      option.animation = false;
      chart.setOption(option);
      box.setAttribute("data-drawn", "1");
      drawn.push(chart);
    });
    window.addEventListener("resize", function () { drawn.forEach(function (c) { c.resize(); }); });
    document.body.setAttribute("data-charts-drawn", String(drawn.length));
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
