// segsync web app: small conveniences on top of pages that work without JavaScript.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A select marked data-autosubmit sends its form when changed (the form has a button too).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // Rows whose checkboxes differ from what is stored are marked, and the count of changes shown.
  const table = document.querySelector("form[data-track-changes]");
  if (table) {
    const counter = table.querySelector("[data-change-count]");
    const update = () => {
      let changes = 0;
      for (const box of table.querySelectorAll("input[type=checkbox][data-stored]")) {
        const changed = box.checked !== (box.dataset.stored === "1");
        box.closest("td").classList.toggle("changed", changed);
        if (changed) changes += 1;
      }
      if (counter) counter.textContent = changes === 1 ? "1 change" : `${changes} changes`;
    };
    table.addEventListener("change", update);
    update();
  }
});

// A page about something still going (a run not yet ended) reloads itself every few seconds
// until it has ended; without JavaScript its Refresh link does the same.
document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("[data-refresh-while-active]")) {
    window.setTimeout(() => window.location.reload(), 3000);
  }
});
