import { getJson, qs, request } from "./client";
import { formPath } from "./forms";

// The formats an export job writes (server.services.exports.ExportFormat).
export const EXPORT_FORMATS = ["csv.zip", "xlsx", "parquet.zip", "csv", "geojson"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportJob {
  id: number;
  format: string;
  state: "queued" | "running" | "done" | "failed" | "expired";
  total: number | null;
  done: number;
  size: number | null;
  error: string | null;
  createdAt: string | null;
  finishedAt: string | null;
  expiresAt: string | null;
  fileName: string;
}

// The export's query options, as the download routes name them.
export type ExportQuery = Record<string, string | null>;

function jobsPath(projectId: number, xmlFormId: string): string {
  return `${formPath(projectId, xmlFormId)}/export-jobs`;
}

export async function createExportJob(
  projectId: number,
  xmlFormId: string,
  format: ExportFormat,
  options: ExportQuery,
): Promise<ExportJob> {
  const path = `${jobsPath(projectId, xmlFormId)}${qs({ format, ...options })}`;
  return (await (await request(path, { method: "POST" })).json()) as ExportJob;
}

export function getExportJob(projectId: number, xmlFormId: string, id: number): Promise<ExportJob> {
  return getJson<ExportJob>(`${jobsPath(projectId, xmlFormId)}/${id}`);
}

export function exportJobFileUrl(projectId: number, xmlFormId: string, id: number): string {
  return `${jobsPath(projectId, xmlFormId)}/${id}/file`;
}

export function isFinished(job: ExportJob): boolean {
  return job.state === "done" || job.state === "failed" || job.state === "expired";
}

// Progress in percent, or null while the number of submissions is not yet known.
export function percentDone(job: ExportJob): number | null {
  if (job.state === "done") return 100;
  if (!job.total) return null;
  return Math.min(100, Math.round((100 * job.done) / job.total));
}
