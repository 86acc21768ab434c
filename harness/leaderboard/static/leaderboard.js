// The leaderboard's only script: sortable columns and overview filters. Bundled, no CDN.
"use strict";

// Sort key of a cell: missing values last, partial aggregates after complete ones.
function cellKey(cell, numeric) {
  const value = cell.dataset.value;
  if (value === undefined || value === "") return { missing: 1, partial: 0, value: 0 };
  return {
    missing: 0,
    partial: cell.dataset.partial ? 1 : 0,
    value: numeric ? parseFloat(value) : value.toLowerCase(),
  };
}

function sortTable(header) {
  const table = header.closest("table");
  const body = table.tBodies[0];
  const column = Array.from(header.parentNode.children).indexOf(header);
  const kind = header.dataset.sort;
  const numeric = kind !== "text";
  const firstDirection = kind === "num" ? "descending" : "ascending";
  const current = header.getAttribute("aria-sort");
  const direction = current
    ? (current === "ascending" ? "descending" : "ascending")
    : firstDirection;
  const sign = direction === "ascending" ? 1 : -1;
  for (const other of header.parentNode.children) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", direction);
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellKey(a.cells[column], numeric);
    const y = cellKey(b.cells[column], numeric);
    if (x.missing !== y.missing) return x.missing - y.missing;
    if (x.partial !== y.partial) return x.partial - y.partial;
    if (x.value < y.value) return -sign;
    if (x.value > y.value) return sign;
    return 0;
  });
  for (const row of rows) body.appendChild(row);
}

function applyFilters() {
  const name = document.getElementById("filter-name").value.trim().toLowerCase();
  const modality = document.getElementById("filter-modality").value;
  const maxSize = parseFloat(document.getElementById("filter-size").value);
  for (const row of document.querySelectorAll("#overview tbody tr")) {
    const params = parseFloat(row.dataset.params);
    const hidden =
      (name && !row.dataset.name.toLowerCase().includes(name)) ||
      (modality && !row.dataset.modalities.split(" ").includes(modality)) ||
      (!Number.isNaN(maxSize) && !(params <= maxSize));
    row.hidden = Boolean(hidden);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const header of document.querySelectorAll("th[data-sort]")) {
    header.addEventListener("click", () => sortTable(header));
  }
  for (const id of ["filter-name", "filter-modality", "filter-size"]) {
    const control = document.getElementById(id);
    if (control) control.addEventListener("input", applyFilters);
  }
});
