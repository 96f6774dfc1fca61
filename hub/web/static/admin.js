// The hub's admin page: local times on hover, optional auto-refresh, no double submits.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Times are written in UTC; show the reader's local time on hover.
  for (const el of document.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.title = `${when.toLocaleString()} (your time)`;
  }

  // A clicked button is disabled while its form posts, so an impatient double click posts once.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) {
        setTimeout(() => { button.disabled = true; }, 0);
      }
    });
  }

  // Auto-refresh, remembered per browser; it waits while someone is typing in a form.
  const box = document.getElementById("auto-refresh");
  if (!box) return;
  const KEY = "hub-admin-auto-refresh";
  box.checked = localStorage.getItem(KEY) === "on";
  box.addEventListener("change", () => localStorage.setItem(KEY, box.checked ? "on" : "off"));
  setInterval(() => {
    const typing = document.activeElement && document.activeElement.closest("form");
    if (box.checked && !typing) window.location.replace(window.location.pathname);
  }, 10000);
});
