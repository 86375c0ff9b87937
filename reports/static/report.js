// Sorting and filtering for report tables. Plain DOM, no libraries, no network.
(function () {
  "use strict";
  function cellValue(row, index, type) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (type === "num") { var n = parseFloat(raw); return isNaN(n) ? -Infinity : n; }
    return raw.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-type]").forEach(function (th) {
      th.addEventListener("click", function () {
        var index = Array.prototype.indexOf.call(th.parentNode.children, th);
        var type = th.getAttribute("data-type");
        var asc = !th.classList.contains("asc");
        table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(asc ? "asc" : "desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index, type), y = cellValue(b, index, type);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var filter = document.getElementById("filter"), status = document.getElementById("status");
  var shown = document.getElementById("shown");
  function apply() {
    var table = document.getElementById("clips") || document.querySelector("table.sortable");
    if (!table) { return; }
    var q = filter ? filter.value.toLowerCase() : "", s = status ? status.value : "", n = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) && (!s || r.getAttribute("data-status") === s || (s === "flagged" && r.hasAttribute("data-flagged")));
      r.classList.toggle("hidden", !ok);
      if (ok) { n += 1; }
    });
    if (shown) { shown.textContent = n + " shown"; }
  }
  if (filter) { filter.addEventListener("input", apply); }
  if (status) { status.addEventListener("change", apply); }
  apply();
}());
