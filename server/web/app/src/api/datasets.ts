// Entity lists (ODK Entities, Central's dataset API) and Homeward's case schedule
// and indicators, as the case-list pages read them.
import { enc, getJson, qs, request, sendJson } from "./client";

export interface FormRef {
  xmlFormId: string;
  name: string;
}

export interface Dataset {
  name: string;
  projectId: number;
  createdAt: string;
  approvalRequired: boolean;
  ownerOnly: boolean;
  entities?: number;
  lastEntity?: string | null;
  sourceForms?: FormRef[];
  linkedForms?: FormRef[];
  properties?: { name: string; publishedAt: string | null; forms: FormRef[] }[];
}

export interface EntityVersion {
  label: string;
  current: boolean;
  createdAt: string;
  creatorId: number | null;
  userAgent: string | null;
  version: number;
  baseVersion: number | null;
  conflictingProperties: string[] | null;
  data?: Record<string, string>;
}

export interface Entity {
  uuid: string;
  creatorId: number | null;
  createdAt: string;
  updatedAt: string | null;
  deletedAt: string | null;
  conflict: "soft" | "hard" | null;
  currentVersion: EntityVersion;
}

export interface EntityChange {
  old: string | null;
  new: string | null;
  propertyName: string;
}

export interface EntitySource {
  version: number;
  createdAt: string;
  xmlFormId: string | null;
  instanceId: string | null;
  instanceName: string | null;
}

export interface EntityRow {
  __id: string;
  label: string;
  __system: {
    createdAt: string;
    creatorName: string | null;
    updatedAt: string | null;
    version: number;
    conflict: string | null;
  };
  [property: string]: unknown;
}

export interface EntityPage {
  value: EntityRow[];
  "@odata.count"?: number;
}

export interface DatasetDiff {
  name: string;
  properties: { name: string; inForm: boolean; isNew?: boolean }[];
  isNew?: boolean;
}

export interface DueCase {
  uuid: string;
  label: string;
  caseId: string | null;
  municipality: string | null;
  counsellor: string | null;
  status: string | null;
  lastWave: string | null;
  lastContact: string | null;
  returnDate: string | null;
  nextWave: string;
  dueDate: string;
  bucket: "overdue" | "week" | "later";
}

export interface Schedule {
  dataset: string;
  asOf: string;
  dueSoonDays: number;
  waves: string[];
  counts: Record<string, number>;
  total: number;
  cases: DueCase[];
}

export interface CountRow {
  key: string;
  count: number;
  labels: Record<string, string>;
}

export interface Breakdown {
  name: string;
  xmlFormId: string;
  withheld: boolean;
  counts: CountRow[];
}

export interface Indicators {
  intakeForm: string;
  followUpForm: string;
  registrations: number;
  followUps: number;
  breakdowns: Breakdown[];
  byMonth: { month: string; registrations: number; followUps: number }[];
}

export function datasetPath(projectId: number, name: string): string {
  return `/v1/projects/${enc(projectId)}/datasets/${enc(name)}`;
}

export function entityPath(projectId: number, name: string, uuid: string): string {
  return `${datasetPath(projectId, name)}/entities/${enc(uuid)}`;
}

export const listDatasets = (projectId: number) =>
  getJson<Dataset[]>(`/v1/projects/${enc(projectId)}/datasets`);
export const getDataset = (projectId: number, name: string) =>
  getJson<Dataset>(datasetPath(projectId, name));
export const updateDataset = (
  projectId: number,
  name: string,
  change: { approvalRequired?: boolean; ownerOnly?: boolean },
) => sendJson<Dataset>("PATCH", datasetPath(projectId, name), change);

// One page of live entities from the list's OData feed, sorted on the server
// (`orderby`: one of Central's sortable fields, then " asc" or " desc").
export const entityPage = (
  projectId: number,
  name: string,
  page: { top: number; skip: number; search: string; orderby: string },
) =>
  getJson<EntityPage>(
    `${datasetPath(projectId, name)}.svc/Entities${qs({
      $top: page.top,
      $skip: page.skip,
      $count: "true",
      $search: page.search.trim(),
      $orderby: page.orderby,
    })}`,
  );

export const deletedEntities = (projectId: number, name: string) =>
  getJson<Entity[]>(`${datasetPath(projectId, name)}/entities${qs({ deleted: "true" })}`);
export const getEntity = (projectId: number, name: string, uuid: string) =>
  getJson<Entity & { currentVersion: EntityVersion & { data: Record<string, string> } }>(
    entityPath(projectId, name, uuid),
  );
export const entityVersions = (projectId: number, name: string, uuid: string) =>
  getJson<EntityVersion[]>(`${entityPath(projectId, name, uuid)}/versions`);
export const entityDiffs = (projectId: number, name: string, uuid: string) =>
  getJson<EntityChange[][]>(`${entityPath(projectId, name, uuid)}/diffs`);
export const entitySources = (projectId: number, name: string, uuid: string) =>
  getJson<EntitySource[]>(`${entityPath(projectId, name, uuid)}/sources`);

// Marks the entity's conflict as resolved, as of the version the person looked at.
export const resolveConflict = (projectId: number, name: string, uuid: string, version: number) =>
  sendJson<Entity>(
    "PATCH",
    `${entityPath(projectId, name, uuid)}${qs({ resolve: "true", baseVersion: version })}`,
    {},
  );
export const deleteEntity = (projectId: number, name: string, uuid: string) =>
  request(entityPath(projectId, name, uuid), { method: "DELETE" });
export const restoreEntity = (projectId: number, name: string, uuid: string) =>
  sendJson<Entity>("POST", `${entityPath(projectId, name, uuid)}/restore`);

export const formDatasetDiff = (formPath: string) => getJson<DatasetDiff[]>(`${formPath}/dataset-diff`);
export const draftDatasetDiff = (formPath: string) =>
  getJson<DatasetDiff[]>(`${formPath}/draft/dataset-diff`);

export const caseSchedule = (projectId: number, dataset: string) =>
  getJson<Schedule>(`/v1/projects/${enc(projectId)}/case-schedule${qs({ dataset })}`);
export const indicators = (projectId: number) =>
  getJson<Indicators>(`/v1/projects/${enc(projectId)}/indicators`);

// A choice's label in the interface language when the form has one ("Shqip (sq)").
export function choiceLabel(row: CountRow, locale: string): string {
  const labels = Object.entries(row.labels);
  const wanted =
    labels.find(([lang]) => lang.endsWith(`(${locale})`)) ??
    labels.find(([lang]) => lang.endsWith("(en)") || lang === "default") ??
    labels[0];
  return wanted ? wanted[1] : row.key;
}
