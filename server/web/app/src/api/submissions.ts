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

// --- filtering by an answer (the feed's $filter on a form's own fields) ------------

// How a field's answers compare on the server (server/services/field_filter.py).
export type AnswerKind = "text" | "number" | "day" | "choices" | "presence";
export type FieldOperator = "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "contains" | "empty" | "answered";

export function answerKind(field: FormField): AnswerKind {
  if (field.type === "int" || field.type === "decimal") return "number";
  if (field.type === "date" || field.type === "dateTime") return "day";
  if (["geopoint", "geotrace", "geoshape"].includes(field.type)) return "presence";
  if (field.selectMultiple) return "choices";
  return "text";
}

const OPERATORS: Record<AnswerKind, FieldOperator[]> = {
  text: ["eq", "ne", "contains", "empty", "answered"],
  choices: ["contains", "eq", "empty", "answered"],
  number: ["eq", "ne", "gt", "ge", "lt", "le", "empty", "answered"],
  day: ["eq", "ne", "gt", "ge", "lt", "le", "empty", "answered"],
  presence: ["answered", "empty"],
};

export function operatorsFor(kind: AnswerKind): FieldOperator[] {
  return OPERATORS[kind];
}

export function needsValue(op: FieldOperator): boolean {
  return op !== "empty" && op !== "answered";
}

// A field's name in $filter: its OData path without the leading slash (group/question).
export function filterName(field: FormField): string {
  return field.path.replace(/^\//, "");
}

function quoted(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

// The $filter clause for one condition; null when the value does not fit the field.
export function answerClause(field: FormField, op: FieldOperator, value: string): string | null {
  const name = filterName(field);
  if (op === "empty") return `${name} eq null`;
  if (op === "answered") return `${name} ne null`;
  const text = value.trim();
  if (!text) return null;
  const kind = answerKind(field);
  let literal: string;
  if (kind === "number") {
    if (!Number.isFinite(Number(text))) return null;
    literal = String(Number(text));
  } else if (kind === "day") {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return null;
    literal = text;
  } else {
    literal = quoted(text);
  }
  return op === "contains" ? `contains(${name}, ${literal})` : `${name} ${op} ${literal}`;
}
