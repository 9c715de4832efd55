// COCO run-length masks, as the segment task sends them: {"size": [h, w], "counts": "<string>"}.
// Written by hand because no small browser library decodes them: this is the inverse of
// pycocotools' rleToString (LEB128-like groups of 5 bits, offset 48, each count after the
// second stored as the difference to the count two before), then runs of 0s and 1s in
// column-major order.

export function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// The mask as a row-major Uint8Array of 0/1 (the layout of ImageData), and its area in pixels.
export function decodeMask(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  const mask = new Uint8Array(width * height);
  let index = 0;
  let area = 0;
  counts.forEach((run, i) => {
    if (i % 2 === 1) {
      for (let j = index; j < index + run; j += 1) {
        const x = Math.floor(j / height);
        const y = j - x * height;
        mask[y * width + x] = 1;
      }
      area += run;
    }
    index += run;
  });
  return { mask, width, height, area };
}
