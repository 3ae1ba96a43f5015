// Offsets: the server counts Python code points; the DOM counts UTF-16 code units.
// A character outside the Basic Multilingual Plane (𝑥, emoji) is one code point but two
// code units, so every position that comes from the DOM goes through here first.

/** The trace as an array of code points: index i is the character at Python offset i. */
export function codePoints(text) {
  return Array.from(text);
}

/**
 * Code points in `text` before UTF-16 position `unit`. A position inside a surrogate pair
 * (which a selection should never produce, but a browser may) rounds down, or up when
 * `roundUp` is true, so a span never holds half a character.
 */
export function codePointIndex(text, unit, roundUp = false) {
  let points = 0;
  let index = 0;
  while (index < unit && index < text.length) {
    const width = text.codePointAt(index) > 0xffff ? 2 : 1;
    if (index + width > unit) return roundUp ? points + 1 : points;
    index += width;
    points += 1;
  }
  return points;
}

/** UTF-16 position of code point `point` in `text` (the inverse of codePointIndex). */
export function unitIndex(text, point) {
  let index = 0;
  for (let seen = 0; seen < point && index < text.length; seen += 1) {
    index += text.codePointAt(index) > 0xffff ? 2 : 1;
  }
  return index;
}

/** Move [start, end) inwards past whitespace (a selection dragged a little too far). */
export function trimmed(points, start, end) {
  while (start < end && /\s/u.test(points[start])) start += 1;
  while (end > start && /\s/u.test(points[end - 1])) end -= 1;
  return [start, end];
}
