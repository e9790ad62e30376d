-- losses: train/test loss and accuracy of every evaluated epoch.
-- grain: variant, epoch, split
-- Columns: variant, epoch, split ('train' | 'test'), loss, accuracy
create or replace view losses as
select variant, epoch, split, loss, accuracy from src_losses;
