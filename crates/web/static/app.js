// The one script of the pages. Everything works without it; it only saves a round trip when
// a form grows by a line. The button it enhances asks the server for the extra row otherwise.
"use strict";

document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-add-line]");
  if (!button) return;
  var table = document.getElementById(button.getAttribute("data-add-line"));
  var rows = table ? table.querySelectorAll("tbody tr.line") : [];
  if (rows.length === 0) return;
  event.preventDefault();
  var next = rows.length;
  var row = rows[rows.length - 1].cloneNode(true);
  row.setAttribute("data-line", String(next));
  row.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
  row.querySelectorAll("td").forEach(function (td) { td.classList.remove("invalid"); });
  row.querySelectorAll("input").forEach(function (input) {
    // Field names follow the API's JSON paths: lines[3].qty is the fourth line's quantity.
    input.name = input.name.replace(/^lines\[\d+\]/, "lines[" + next + "]");
    input.id = input.id.replace(/^f-lines-\d+-/, "f-lines-" + next + "-");
    input.value = "";
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  });
  table.querySelector("tbody").appendChild(row);
  var first = row.querySelector("input");
  if (first) first.focus();
});

// The packing list's print button: script may not run inline under the page's policy.
document.addEventListener("click", function (event) {
  if (event.target.closest("button[data-print]")) window.print();
});
