import { enc } from "./client";
import { formPath } from "./forms";
import type { FormField } from "./types";

export const REVIEW_STATES = ["received", "hasIssues", "edited", "approved", "rejected"] as const;

export function submissionPath(projectId: number, xmlFormId: string, instanceId: string): string {
  return `${formPath(projectId, xmlFormId)}/submissions/${enc(instanceId)}`;
}

export function attachmentUrl(
  projectId: number,
  xmlFormId: string,
  instanceId: string,
  name: string,
): string {
  return `${submissionPath(projectId, xmlFormId, instanceId)}/attachments/${enc(name)}`;
}

// An OData row keeps groups as nested objects; a field's path (/group/q) walks them.
export function valueAt(row: Record<string, unknown>, path: string): unknown {
  let value: unknown = row;
  for (const part of path.split("/").filter(Boolean)) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

// The fields worth a column: answers outside repeats, no structure or metadata.
export function columnFields(fields: FormField[]): FormField[] {
  const repeats = fields.filter((f) => f.type === "repeat").map((f) => `${f.path}/`);
  return fields.filter(
    (f) =>
      !["structure", "repeat"].includes(f.type) &&
      !f.path.startsWith("/meta/") &&
      !repeats.some((r) => f.path.startsWith(r)),
  );
}

export function isImage(name: string): boolean {
  return /\.(jpe?g|png|gif|webp|bmp)$/i.test(name);
}

export function display(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") {
    const geo = value as { type?: string; coordinates?: number[] };
    if (geo.type === "Point" && Array.isArray(geo.coordinates)) {
      return `${geo.coordinates[1]}, ${geo.coordinates[0]}`;
    }
    return JSON.stringify(value);
  }
  return String(value);
}
