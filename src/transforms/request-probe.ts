import { checkRequestLine } from '../validate/request-schema.js';
import { compileProbeBuilder, type RequestTemplateOptions } from './request-builder.js';
import { type LineValidator, PENDING_ID } from './request-encoder.js';

/** Probe values for every placeholder: empty, short, very long, and JSON- and regex-hostile text. */
const PROBES = ['', 'x', 'x'.repeat(100_000), '"\\\n\t{}[]<>@#%&*?/:;,.é€👍\u0000 '];

/**
 * Whether each record's request must be validated, or the template settles it once. Placeholders
 * only ever insert strings, so if the template validates with every placeholder set to each probe,
 * a record can only differ from a valid request in strings the schemas accept whatever they hold.
 * If any probe fails (an enum, a pattern, a length limit sits under a placeholder), every record
 * is validated in full.
 */
export function templateNeedsPerRecordValidation(options: RequestTemplateOptions): boolean {
  const probe = compileProbeBuilder(options);
  return !PROBES.every((value) => {
    const request = probe(value);
    return (
      checkRequestLine({ custom_id: PENDING_ID, method: 'POST', url: request.url, body: request.body })
        .length === 0
    );
  });
}

/** The Batch API schemas as a LineValidator. */
export const validateLine: LineValidator = (line) => checkRequestLine(line)[0];
