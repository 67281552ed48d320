// Reloads a page that asks for it (<body data-refresh="15">) every so many seconds, unless the
// reader has a <details> open or is typing, so nothing they are looking at disappears.
(function () {
  var seconds = Number(document.body && document.body.dataset.refresh);
  if (!seconds) return;
  window.setInterval(function () {
    var busy = document.querySelector("details[open]") ||
      (document.activeElement && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName));
    if (!busy) window.location.reload();
  }, seconds * 1000);
})();
