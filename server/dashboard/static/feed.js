// Live feed: new events arrive as ids over Server-Sent Events; the rows come from the server, rendered
// with the page's filters, and are put at the top (or replace the row when the event changed).
(function () {
  "use strict";
  var table = document.getElementById("feed");
  var body = document.getElementById("feed-body");
  var badge = document.getElementById("live-state");
  if (!table || !body || table.dataset.live !== "on" || !window.EventSource) {
    if (badge) { badge.classList.add("off"); badge.textContent = badge.dataset.off; }
    return;
  }
  var filters = table.dataset.filters || "";

  function setLive(on) {
    badge.classList.toggle("off", !on);
    badge.textContent = on ? badge.dataset.on : badge.dataset.off;
  }

  function insert(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    var rows = Array.prototype.slice.call(holder.querySelectorAll("tr.event-row")).reverse();
    rows.forEach(function (row) {
      var old = document.getElementById(row.id);
      row.classList.add("fresh");
      if (old) { old.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
    });
    var empty = document.getElementById("feed-empty");
    if (empty && rows.length) { empty.remove(); }
  }

  function fetchRows(ids) {
    var url = "/feed/rows?" + (filters ? filters + "&" : "") + "ids=" + ids.join(",");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(insert)
      .catch(function () { setLive(false); });
  }

  var source = new EventSource("/feed/stream");
  source.addEventListener("open", function () { setLive(true); });
  source.addEventListener("error", function () { setLive(false); });
  source.addEventListener("events", function (msg) { fetchRows(JSON.parse(msg.data)); });
  source.addEventListener("reload", function () { window.location.reload(); });
})();
