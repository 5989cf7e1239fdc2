/* zige (资格) page behaviour. Loaded on every page; the CSP forbids inline scripts, so data for
   charts comes from <script type="application/json"> blocks written by Django's json_script. */
(function () {
  "use strict";

  var STATUS_COLORS = {
    eligible: "#2e8b4e",
    pending: "#e0a100",
    review: "#7b3fb5",
    suspend: "#e8742c",
    stop: "#c62828"
  };
  var FONT = '"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif';

  function readJSON(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  var GRID_LINE = { lineStyle: { color: "#eef1f5" } };
  var AXIS_LABEL = { color: "#7b8794", fontSize: 11 };
  var AXIS_LINE = { lineStyle: { color: "#dde2ea" } };

  function thousands(v) { return v == null ? "—" : Number(v).toLocaleString("en-US"); }

  /* Horizontal bars: people per reason, coloured by the status the reason leads to. */
  function reasonsChart(el, data) {
    var r = data.reasons;
    return {
      textStyle: { fontFamily: FONT },
      animation: false,
      grid: { left: 8, right: 48, top: 4, bottom: 4, containLabel: true },
      tooltip: {
        trigger: "axis", axisPointer: { type: "shadow" },
        formatter: function (items) {
          var it = items[0], status = r.statuses[it.dataIndex];
          return it.name + "<br>" + (data.statusLabels[status] || "") + " " + thousands(it.value) + " 人";
        }
      },
      xAxis: { type: "value", minInterval: 1, splitLine: GRID_LINE, axisLabel: AXIS_LABEL },
      yAxis: {
        type: "category", data: r.labels,
        axisTick: { show: false }, axisLine: AXIS_LINE,
        axisLabel: { color: "#4a5563", fontSize: 12, interval: 0 }
      },
      series: [{
        type: "bar", barMaxWidth: 14, barCategoryGap: "35%",
        data: r.values.map(function (v, i) {
          return { value: v, itemStyle: { color: STATUS_COLORS[r.statuses[i]] || "#8a96a6", borderRadius: [0, 2, 2, 0] } };
        }),
        label: { show: true, position: "right", color: "#4a5563", fontSize: 11, formatter: function (p) { return thousands(p.value); } }
      }]
    };
  }

  /* Per run: stacked bars of the statuses that need work, and the share of 具备资格 as a line. */
  function trendChart(el, data) {
    var t = data.trend;
    var work = ["pending", "review", "suspend", "stop"];
    var series = work.map(function (s) {
      return {
        name: data.statusLabels[s], type: "bar", stack: "work", barMaxWidth: 36,
        itemStyle: { color: STATUS_COLORS[s] },
        data: t.series[s] || []
      };
    });
    series.push({
      name: "具备资格占比", type: "line", yAxisIndex: 1, symbolSize: 7,
      itemStyle: { color: STATUS_COLORS.eligible }, lineStyle: { width: 2.5 },
      label: {
        show: true, position: "top", distance: 8, color: STATUS_COLORS.eligible, fontSize: 11, fontWeight: 600,
        formatter: "{c}%", backgroundColor: "rgba(255,255,255,.9)", padding: [1, 4], borderRadius: 2
      },
      data: t.eligibleShare
    });
    return {
      textStyle: { fontFamily: FONT },
      animation: false,
      legend: { bottom: 0, itemWidth: 12, itemHeight: 8, itemGap: 14, textStyle: { color: "#4a5563", fontSize: 12 } },
      grid: { left: 8, right: 8, top: 26, bottom: 30, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "category", data: t.labels, axisLabel: AXIS_LABEL, axisLine: AXIS_LINE, axisTick: { show: false } },
      // The share's axis starts on a multiple of 5 so that its lowest label is one of its ticks
      // (83% was drawn over 84%, and 99% under 100%).
      yAxis: [
        { type: "value", name: "需处理人数", minInterval: 1, nameTextStyle: AXIS_LABEL, splitLine: GRID_LINE, axisLabel: AXIS_LABEL },
        { type: "value", name: "具备资格占比", nameTextStyle: AXIS_LABEL, min: function (v) { return Math.max(0, Math.floor((v.min - 5) / 5) * 5); }, max: 100,
          splitLine: { show: false }, axisLabel: { color: "#7b8794", fontSize: 11, formatter: "{value}%" } }
      ],
      series: series
    };
  }

  var BUILDERS = { reasons: reasonsChart, trend: trendChart };

  function drawCharts() {
    var nodes = document.querySelectorAll("[data-chart]");
    if (!nodes.length || typeof window.echarts === "undefined") { return; }
    var charts = [];
    nodes.forEach(function (el) {
      var data = readJSON(el.getAttribute("data-source"));
      var build = BUILDERS[el.getAttribute("data-chart")];
      if (!data || !build) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(build(el, data));
      charts.push(chart);
    });
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 120);
    });
  }

  /* Forms marked data-once disable their submit button after the first click. */
  function guardForms() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.disabled = true;
          if (b.getAttribute("data-busy")) { b.textContent = b.getAttribute("data-busy"); }
        });
      });
    });
  }

  /* Select filters that submit on change (data-autosubmit). */
  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { if (sel.form) { sel.form.submit(); } });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    guardForms();
    autoSubmit();
  });
})();
