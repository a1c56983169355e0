// A form's cleaning log, its checks' suggestions and stored findings (server/api/cleaning.py,
// /work/briefs/cleaning-api.md). Fields are named by their paths ("/age", "/plot[2]/crop").
import { ApiError, getJson, request, sendJson } from "./client";
import { formPath } from "./forms";
import type { FormField } from "./types";

export interface CleaningEntry {
  id: number | null; // null: derived from an edit of the submission, not deletable here
  instanceId: string;
  field: string | null; // null: the whole submission leaves cleaned exports
  oldValue: string | null;
  newValue: string | null;
  reason: string;
  who: string | null;
  createdAt: string;
  source: string;
}

export interface NewCleaningEntry {
  instanceId: string;
  field: string | null;
  newValue: string | null;
  reason: string;
  oldValue?: string | null;
  source?: string;
}

export interface Suggestion {
  check: string;
  instanceId: string;
  field: string | null;
  value: string | null;
  suggestedValue: string | null;
  reason: string;
  related: string[];
}

// A check that could not run: `reason` is a stable code (locales: cleaning.notEvaluatedReasons),
// `why` the same in English for API users.
export interface NotEvaluated {
  check: string;
  field: string | null;
  why: string;
  reason?: string;
}

export interface CheckReport {
  checked: number;
  suggestions: Suggestion[];
  notEvaluated: NotEvaluated[];
}

export const CHECKS = ["duplicate", "outlier", "constraint", "other", "duration"] as const;

// exports.checks.CheckSettings: null field lists mean the defaults (personal questions;
// every number).
export interface CheckSettings {
  checks: string[];
  duplicateFields: string[] | null;
  duplicateRatio: number;
  outlierFields: string[] | null;
  outlierFence: number;
  minMinutes: number;
  otherRatio: number;
}

// A question the settings may name, with its labels by language ("default" when untranslated).
export interface SettingsQuestion {
  path: string;
  name: string;
  kind: string;
  repeat: string | null;
  personal: boolean;
  labels: Record<string, string>;
}

export interface StoredCheckSettings {
  stored: boolean;
  settings: CheckSettings;
  questions?: SettingsQuestion[];
}

export interface Finding {
  id: number;
  instanceId: string;
  kind: string;
  field: string | null;
  repeatKey: string | null;
  value: string | null;
  suggestedValue: string | null;
  message: string;
  related: string[];
  status: "open" | "accepted" | "dismissed";
  createdAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  dismissReason: string | null;
  cleaningEntryId: number | null;
}

function logPath(projectId: number, xmlFormId: string): string {
  return `${formPath(projectId, xmlFormId)}/cleaning-log`;
}

export function listCleaningLog(projectId: number, xmlFormId: string): Promise<CleaningEntry[]> {
  return getJson<CleaningEntry[]>(logPath(projectId, xmlFormId));
}

export function cleaningLogCsvUrl(projectId: number, xmlFormId: string): string {
  return `${logPath(projectId, xmlFormId)}.csv`;
}

export function addCleaningEntry(
  projectId: number,
  xmlFormId: string,
  entry: NewCleaningEntry,
): Promise<CleaningEntry> {
  return sendJson<CleaningEntry>("POST", logPath(projectId, xmlFormId), entry);
}

export async function uploadCleaningLog(
  projectId: number,
  xmlFormId: string,
  file: File,
): Promise<CleaningEntry[]> {
  const response = await request(`${logPath(projectId, xmlFormId)}.csv`, {
    method: "POST",
    body: file,
    headers: { "Content-Type": "text/csv" },
  });
  return (await response.json()) as CleaningEntry[];
}

export async function deleteCleaningEntry(projectId: number, xmlFormId: string, id: number): Promise<void> {
  await sendJson("DELETE", `${logPath(projectId, xmlFormId)}/${id}`);
}

export function runCleaningChecks(projectId: number, xmlFormId: string): Promise<CheckReport> {
  return sendJson<CheckReport>("POST", `${formPath(projectId, xmlFormId)}/cleaning-checks`, {});
}

// Stored findings of the checks on new submissions; null where this server has none
// (an older server answers 404) or the caller may not see them (403).
export async function listOpenFindings(projectId: number, xmlFormId: string): Promise<Finding[] | null> {
  try {
    return await getJson<Finding[]>(`${formPath(projectId, xmlFormId)}/cleaning-findings?status=open`);
  } catch (caught) {
    if (caught instanceof ApiError && (caught.status === 404 || caught.status === 403)) return null;
    throw caught;
  }
}

export function acceptFinding(
  projectId: number,
  xmlFormId: string,
  id: number,
  body: { newValue?: string; reason?: string },
): Promise<{ finding: Finding; entry: CleaningEntry }> {
  return sendJson("POST", `${formPath(projectId, xmlFormId)}/cleaning-findings/${id}/accept`, body);
}

export function dismissFinding(projectId: number, xmlFormId: string, id: number, reason: string): Promise<Finding> {
  return sendJson("POST", `${formPath(projectId, xmlFormId)}/cleaning-findings/${id}/dismiss`, { reason });
}

function settingsPath(projectId: number, xmlFormId: string): string {
  return `${formPath(projectId, xmlFormId)}/cleaning-check-settings`;
}

// The form's check settings; null where the caller may not see them (only those who write
// the log do) or the server has none.
export async function getCheckSettings(projectId: number, xmlFormId: string): Promise<StoredCheckSettings | null> {
  try {
    return await getJson<StoredCheckSettings>(settingsPath(projectId, xmlFormId));
  } catch (caught) {
    if (caught instanceof ApiError && (caught.status === 404 || caught.status === 403)) return null;
    throw caught;
  }
}

export function storeCheckSettings(
  projectId: number,
  xmlFormId: string,
  settings: CheckSettings,
): Promise<StoredCheckSettings> {
  return sendJson<StoredCheckSettings>("PUT", settingsPath(projectId, xmlFormId), settings);
}

export async function resetCheckSettings(projectId: number, xmlFormId: string): Promise<void> {
  await sendJson("DELETE", settingsPath(projectId, xmlFormId));
}

export function runFindings(
  projectId: number,
  xmlFormId: string,
): Promise<{ checked: number; added: number; notEvaluated: NotEvaluated[] }> {
  return sendJson("POST", `${formPath(projectId, xmlFormId)}/cleaning-findings/run`, {});
}

// A question's label in the interface language ("Shqip (sq)"), else the default or English
// one, with its name: "Age (age)".
export function questionLabel(question: SettingsQuestion, locale: string): string {
  const labels = Object.entries(question.labels);
  const wanted =
    labels.find(([lang]) => lang.endsWith(`(${locale})`)) ??
    labels.find(([lang]) => lang === "default" || lang.endsWith("(en)")) ??
    labels[0];
  return wanted && wanted[1].trim() ? `${wanted[1]} (${question.name})` : question.name;
}

// The questions an entry may clean: answers, not groups, repeats or metadata.
export function cleanableFields(fields: FormField[]): FormField[] {
  return fields.filter((f) => !["structure", "repeat"].includes(f.type) && !f.path.startsWith("/meta/"));
}

// The repeats enclosing a field, outermost first ("/plot" for "/plot/crop").
export function enclosingRepeats(field: FormField, fields: FormField[]): string[] {
  return fields
    .filter((f) => f.type === "repeat" && field.path.startsWith(`${f.path}/`))
    .map((f) => f.path)
    .sort((a, b) => a.length - b.length);
}

// "/plot/crop" with rows {"/plot": 2} -> "/plot[2]/crop", as the log names repeat answers.
export function entryField(field: FormField, rows: Record<string, number>): string {
  let path = field.path;
  const repeats = Object.keys(rows).sort((a, b) => b.length - a.length);
  for (const repeat of repeats) {
    path = `${repeat}[${rows[repeat]}]${path.slice(repeat.length)}`;
  }
  return path;
}
