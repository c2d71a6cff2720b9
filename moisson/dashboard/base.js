// What every dashboard page shares: building elements. Every string that comes from
// events or the database is set with textContent, so a name made of HTML shows as text.
"use strict";
const $ = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = v; else if (k === "on") el.addEventListener("click", v); else el.setAttribute(k, v);
  }
  for (const kid of kids) el.append(kid);
  return el;
};
const svg = (tag, attrs = {}) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};
