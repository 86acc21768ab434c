// The leaderboard's plots, drawn with the bundled plotly.js from the page's JSON block
// (#plot-data, written by harness/leaderboard/plots.py). Every string from the data reaches the page as
// text: plotly reads a few HTML-like tags in labels, so `<`, `>` and `&` become entities first.
"use strict";

(() => {
  // No plotly logo link and no "Share chart" button (it uploads the data to Plotly's cloud).
  const CONFIG = {
    displaylogo: false,
    showSendToCloud: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d"],
  };
  const LAYOUT = { height: 440, margin: { t: 20, r: 20, b: 60, l: 70 }, hovermode: "closest" };

  // `text` as plotly shows it literally (its labels understand <b>, <br>, <a> and entities).
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function score(value) {
    return value === null ? "—" : value.toFixed(4);
  }

  // Hover text of a value and its interval (none for external results).
  function scoreText(series, index) {
    const low = series.low[index];
    const interval = low === null ? "" : ` [${score(low)}, ${score(series.high[index])}]`;
    return score(series.y[index]) + interval;
  }

  // plotly draws a flat bar for null, none for NaN (JSON has no NaN).
  function noBar(value) {
    return value === null ? NaN : value;
  }

  function errorBars(series) {
    return {
      type: "data",
      symmetric: false,
      array: series.error_plus.map(noBar),
      arrayminus: series.error_minus.map(noBar),
      visible: true,
    };
  }

  function sizeTraces(spec) {
    return spec.series.map((series) => ({
      type: "scatter",
      mode: spec.label_points ? "markers+text" : "markers",
      name: plain(series.name),
      x: series.x,
      y: series.y,
      text: series.labels.map(plain),
      textposition: "top right",
      cliponaxis: false,
      error_y: errorBars(series),
      marker: { size: 10, symbol: series.external ? "diamond-open" : "circle" },
      hoverinfo: "text",
      hovertext: series.labels.map(
        (label, index) =>
          `${plain(label)}<br>${series.x[index].toLocaleString("en-US")} parameters` +
          `<br>mean ${scoreText(series, index)}`,
      ),
    }));
  }

  function typeTraces(spec) {
    const types = spec.types.map(plain);
    return spec.series.map((series) => ({
      type: "bar",
      name: plain(series.name),
      x: types,
      y: series.y,
      error_y: errorBars(series),
      visible: series.shown ? true : "legendonly",
      marker: series.external ? { pattern: { shape: "/" } } : {},
      hoverinfo: "text",
      hovertext: types.map(
        (type, index) => `${plain(series.name)}<br>${type}: ${scoreText(series, index)}`,
      ),
    }));
  }

  const PLOTS = {
    size: (spec) => ({
      traces: sizeTraces(spec),
      layout: {
        xaxis: { type: "log", dtick: "D2", tickformat: "~s", title: { text: plain(spec.x_title) } },
        yaxis: { title: { text: plain(spec.y_title) } },
      },
    }),
    types: (spec) => ({
      traces: typeTraces(spec),
      layout: { barmode: "group", yaxis: { title: { text: plain(spec.y_title) } } },
    }),
  };

  // A sentence in place of a plot.
  function say(container, sentence) {
    const paragraph = document.createElement("p");
    paragraph.className = "plot-empty";
    paragraph.textContent = sentence;
    container.replaceChildren(paragraph);
    container.classList.add("plot-is-empty");
  }

  function drawAll() {
    const block = document.getElementById("plot-data");
    if (!block) return;
    let payload = {};
    try {
      payload = JSON.parse(block.textContent) || {};
    } catch (error) {
      payload = {};
    }
    for (const container of document.querySelectorAll(".plot")) {
      const kind = container.dataset.kind;
      const spec = payload[kind];
      if (!PLOTS[kind] || !spec) say(container, "Nothing to plot.");
      else if (spec.empty) say(container, spec.empty);
      else if (typeof Plotly === "undefined") say(container, "The plotting library did not load.");
      else {
        const plot = PLOTS[kind](spec);
        Plotly.newPlot(container, plot.traces, { ...LAYOUT, ...plot.layout }, CONFIG);
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
